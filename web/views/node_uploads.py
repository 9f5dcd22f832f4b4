"""A provincial node's recordings reaching the centre: a resumable upload in the manner of tus, over a
link that may be cut at any moment (provincial_nodes/upload.py is the node's side).

Every route is for a node only: ``Authorization: Bearer <node credential>``; a missing, malformed, unknown or
revoked credential is 401 before anything else is looked at. Then every input is checked (the key, the file
name, the offset, the body) and a bad request is a 400 that changes nothing.

- ``HEAD /nodes/uploads/{key}/{name}``: 200 with ``Upload-Offset``, the bytes stored so far (0: none).
- ``PATCH /nodes/uploads/{key}/{name}`` with ``Upload-Offset: n`` and ``Content-Type:
  application/offset+octet-stream``: the body is appended when ``n`` is the stored size (else 409 with the
  stored ``Upload-Offset``); 204 with the new ``Upload-Offset``. A body is at most :data:`MAX_CHUNK_BYTES`,
  a file at most ``[recordings] node_upload_max_mb`` (413). What arrives before a cut is kept: the node
  resumes from there.
- ``POST /nodes/uploads/{key}/{name}/complete`` ``{"sha256": "..."}``: the centre hashes what it stored;
  200 when equal, else 409 and the file is removed (the node sends it again from 0).
- ``POST /nodes/uploads/{key}/seal`` ``{"meeting_id": N}``: every file the manifest lists is present,
  complete and of its size and SHA-256, and the meeting is one the node's office hosts or is invited to
  (else 404 "no such meeting", counted as a refusal): the folder moves into the archive and is filed as a
  recording of that meeting (``RecordingService.add_from_node``: seen on /archive exactly with the meeting's
  visibility; audited as ``recording.node_upload``). Sealing again answers the same and changes nothing.

The routes are under ``web.middleware.NODE_UPLOADS_PREFIX``: API errors, and no CSRF check (a bearer
credential, never a cookie). The staging folder and its state are recordings/incoming.py's. One lock per upload orders the requests of
one recording; a request that waits too long for it is answered 423 (an earlier request is still being
read). The credential never reaches a log (request logs carry no headers); chunks are logged at DEBUG only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from meetings.errors import DiskFull, NotAuthenticated, NotFound, ValidationFailed
from meetings.models import ProvincialNode
from meetings.policy import Caller
from meetings.services.common import clean_int
from meetings.services.nodes import RECORDING_STATES
from recordings.errors import UploadConflict, UploadError, UploadInvalid
from recordings.incoming import IncomingUpload, check_name, check_sha256
from web import keys
from web.forms import read_json, services
from web.middleware import json_error
from web.views.nodes import bearer_credential

log = logging.getLogger("web.node_uploads")
routes = web.RouteTableDef()

OFFSET_TYPE = "application/offset+octet-stream"
TUS_VERSION = "1.0.0"
#: The largest body of one PATCH.
MAX_CHUNK_BYTES = 8 * 2**20
#: The body is read (and written) in pieces of this size.
PIECE_BYTES = 64 * 1024
#: A body that sends nothing for this long is given up (what came is kept).
READ_TIMEOUT_SECONDS = 60.0
#: How long a request waits for another request of the same upload to finish.
LOCK_WAIT_SECONDS = 10.0
_DIGITS = re.compile(r"^[0-9]{1,18}$")
UPLOADS: web.AppKey[NodeUploads] = web.AppKey("node_uploads")


@dataclass
class NodeUploads:
    """The app's uploads: the largest file accepted, and one lock per (node, key)."""

    max_file_bytes: int
    locks: dict[tuple[int, str], asyncio.Lock] = field(default_factory=dict)

    def lock(self, node_id: int, key: str) -> asyncio.Lock:
        return self.locks.setdefault((node_id, key), asyncio.Lock())


def setup(app: web.Application, max_file_bytes: int) -> None:
    app[UPLOADS] = NodeUploads(max_file_bytes)


# ------------------------------------------------------------------------------------------- helpers

async def _node(request: web.Request) -> ProvincialNode:
    credential = bearer_credential(request)
    if credential is None:
        raise NotAuthenticated("a node presents its credential as Authorization: Bearer <credential>")
    return await services(request).nodes.authenticate(credential, address=_address(request))


def _address(request: web.Request) -> str:
    return request.app[keys.SECURITY].client_address(request)


def _upload(request: web.Request, node: ProvincialNode) -> IncomingUpload:
    root: Path | None = request.app[keys.ARCHIVE_ROOT]
    if root is None:
        raise NotFound("this server keeps no recording archive")
    try:
        return IncomingUpload(root, node.id, request.match_info["key"])
    except UploadInvalid as exc:
        raise ValidationFailed(str(exc), field="key") from None


def _name(request: web.Request) -> str:
    try:
        return check_name(request.match_info["name"])
    except UploadInvalid as exc:
        raise ValidationFailed(str(exc), field="name") from None


def _uploads(request: web.Request) -> NodeUploads:
    return request.app[UPLOADS]


def _headers(offset: int | None = None) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    if offset is not None:
        headers["Upload-Offset"] = str(offset)
    return headers


def _number_header(request: web.Request, name: str) -> int:
    raw = request.headers.get(name)
    if raw is None or not _DIGITS.fullmatch(raw.strip()):
        raise ValidationFailed(f"{name} must be a whole number of bytes", field=name)
    return int(raw.strip())


async def _body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    body = await read_json(request)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationFailed(f"unknown field {unknown[0]!r}; expected {', '.join(sorted(allowed))}",
                               field=unknown[0][:40])
    return body


def _refused(exc: UploadError, name: str | None = None) -> web.Response:
    """An upload's refusal: 400 for a malformed request, 409 (with the offset to resume from) for a state
    that does not allow it."""
    if isinstance(exc, UploadConflict):
        return json_error(409, "upload_conflict", str(exc), headers=_headers(exc.offset))
    return json_error(400, "bad_upload", str(exc), field=name)


@contextlib.asynccontextmanager
async def _locked(request: web.Request, node: ProvincialNode, key: str) -> AsyncIterator[None]:
    lock = _uploads(request).lock(node.id, key)
    try:
        await asyncio.wait_for(lock.acquire(), LOCK_WAIT_SECONDS)
    except asyncio.TimeoutError:
        raise _Busy() from None
    try:
        yield
    finally:
        lock.release()


class _Busy(Exception):
    """Another request of the same upload holds its lock."""


def _busy() -> web.Response:
    return json_error(423, "upload_busy", "another request of this upload is still being read; try again",
                      headers={**_headers(), "Retry-After": "5"})


# -------------------------------------------------------------------------------------------- routes

@routes.head("/nodes/uploads/{key}/{name}")
async def upload_offset(request: web.Request) -> web.StreamResponse:
    node = await _node(request)
    upload, name = _upload(request, node), _name(request)
    try:
        stored = await asyncio.to_thread(upload.stored, name)
    except UploadError as exc:
        return _refused(exc, "name")
    return web.Response(status=200, headers=_headers(stored))


@routes.patch("/nodes/uploads/{key}/{name}")
async def upload_append(request: web.Request) -> web.StreamResponse:
    node = await _node(request)
    upload, name = _upload(request, node), _name(request)
    if request.content_type != OFFSET_TYPE:
        raise ValidationFailed(f"Content-Type must be {OFFSET_TYPE}", field="Content-Type")
    offset = _number_header(request, "Upload-Offset")
    length = request.content_length
    if length is None:
        raise ValidationFailed("Content-Length is required", field="Content-Length")
    if length > MAX_CHUNK_BYTES:
        return json_error(413, "too_large", f"a chunk is at most {MAX_CHUNK_BYTES} bytes", headers=_headers())
    limit = _uploads(request).max_file_bytes
    if offset + length > limit:
        return json_error(413, "too_large", f"a file is at most {limit} bytes ([recordings] node_upload_max_mb)",
                          headers=_headers())
    try:
        async with _locked(request, node, upload.key):
            try:
                fd = upload.open_for_append(name, offset)
            except UploadError as exc:
                return _refused(exc, "name")
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise DiskFull("the centre's disk is full; nothing was saved") from None
                raise
            written, cut = await _append(request, fd, length)
    except _Busy:
        return _busy()
    log.debug("node upload chunk", extra={"event": "node_upload.chunk", "node_id": node.id, "key": upload.key,
                                          "file": name, "offset": offset, "bytes": written})
    if cut is not None:
        # The node's side is most likely gone; what came is kept and the node resumes from there.
        return json_error(400, "incomplete_body", f"the body ended after {written} of {length} bytes ({cut}); "
                          "what came is kept", headers=_headers(offset + written))
    return web.Response(status=204, headers=_headers(offset + written))


async def _append(request: web.Request, fd: int, length: int) -> tuple[int, str | None]:
    """Write the request's body to ``fd`` as it comes; (bytes written, why it ended early or None)."""
    written = 0
    cut: str | None = None
    try:
        while written < length:
            try:
                piece = await asyncio.wait_for(request.content.read(min(PIECE_BYTES, length - written)),
                                               READ_TIMEOUT_SECONDS)
            except asyncio.TimeoutError:
                cut = f"nothing for {READ_TIMEOUT_SECONDS:.0f} s"
                break
            except ConnectionError as exc:
                cut = f"connection lost: {exc}"
                break
            if not piece:
                cut = "end of the body"
                break
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view):]
            written += len(piece)
        await asyncio.to_thread(os.fsync, fd)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"the centre's disk is full; {written} bytes of this chunk were kept") from None
        raise
    finally:
        os.close(fd)
    return written, cut


@routes.post("/nodes/uploads/{key}/{name}/complete")
async def upload_complete(request: web.Request) -> web.StreamResponse:
    node = await _node(request)
    upload, name = _upload(request, node), _name(request)
    body = await _body(request, {"sha256"})
    try:
        sha = check_sha256(body.get("sha256"))
    except UploadInvalid as exc:
        raise ValidationFailed(str(exc), field="sha256") from None
    try:
        async with _locked(request, node, upload.key):
            try:
                done = await asyncio.to_thread(upload.complete, name, sha)
            except UploadError as exc:
                if isinstance(exc, UploadConflict) and exc.offset == 0:
                    log.warning("a node's file differs from what the centre stored: removed", extra={
                        "event": "node_upload.checksum_mismatch", "node_id": node.id, "key": upload.key,
                        "file": name})
                return _refused(exc, "name")
    except _Busy:
        return _busy()
    return web.json_response({"name": name, "size": done.size, "sha256": done.sha256}, headers=_headers(done.size))


@routes.post("/nodes/uploads/{key}/seal")
async def upload_seal(request: web.Request) -> web.StreamResponse:
    node = await _node(request)
    upload = _upload(request, node)
    body = await _body(request, {"meeting_id"})
    meeting_id = clean_int(body.get("meeting_id"), "meeting_id")
    svc = services(request)
    address = _address(request)
    try:
        async with _locked(request, node, upload.key):
            state = await asyncio.to_thread(upload.load_state)
            if state.sealed is not None:  # sealed before: the same answer, nothing changes
                if state.sealed.get("meeting_id") != meeting_id:
                    return json_error(409, "upload_conflict", "the upload was sealed as a recording of meeting "
                                      f"{state.sealed.get('meeting_id')}", headers=_headers())
                return web.json_response({**state.sealed, "key": upload.key, "already_sealed": True},
                                         headers=_headers())
            try:
                await svc.nodes.node_meeting(node.id, meeting_id, address=address, states=RECORDING_STATES,
                                             purpose="upload")
            except NotFound:  # counted by the service; not counted again as a page's 404
                return json_error(404, "not_found", "no such meeting", field="meeting_id", headers=_headers())
            try:
                sealing = await asyncio.to_thread(upload.begin_seal, meeting_id)
            except UploadError as exc:
                return _refused(exc, "manifest")
            try:
                recording = await svc.recordings.add_from_node(
                    Caller(principal=None, address=address, system=True), node, meeting_id, key=upload.key,
                    manifest=sealing.manifest, manifest_sha256=sealing.manifest_sha256,
                    size_bytes=sealing.size_bytes)
            except Exception:
                await asyncio.to_thread(upload.abandon_seal)
                raise
            try:
                sealed = await asyncio.to_thread(upload.finish_seal, recording.id)
            except UploadError as exc:
                return _refused(exc)
    except _Busy:
        return _busy()
    _uploads(request).locks.pop((node.id, upload.key), None)
    log.info("a node's recording reached the archive", extra={
        "event": "recording.node_upload", "node_id": node.id, "office": node.office.code, "key": upload.key,
        "recording_id": recording.id, "meeting_id": meeting_id, "size_bytes": sealing.size_bytes,
        "manifest_sha256": sealing.manifest_sha256})
    return web.json_response({**sealed, "key": upload.key, "already_sealed": False}, headers=_headers())
