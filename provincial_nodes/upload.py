"""The node's recordings reach the centre: a resumable upload that survives any cut of the WAN link.

:class:`RecordingUploader` looks for the node's sealed recordings (provincial_nodes/local_recordings.py)
that the centre has not sealed yet, oldest first, and for each (web/views/node_uploads.py is the centre's
side, with the node's credential as a bearer token):

1. per file (the media files the manifest lists, then ``journal.jsonl``, then ``manifest.json``): ``HEAD``
   for the bytes the centre holds, ``PATCH`` the rest from there in chunks of :data:`CHUNK_BYTES`, then
   ``complete`` with the file's SHA-256. A 409 on ``complete`` means the centre's copy differed and was
   removed: the file starts again from 0 (at most :data:`MAX_RESTARTS` times in a pass);
2. ``seal`` with the recording's meeting: the centre files it in its archive.

Any cut (a connection error, a timeout, the centre restarting or busy, the node itself restarting) is
followed by a wait with the control channel's backoff (full jitter, 1 s to 30 s), and the next pass resumes
every file from the offset the centre reports: nothing already received is sent again. A recording the
centre refuses (a meeting this office may not carry, files that do not match their manifest) is set aside
for :data:`REFUSED_RETRY_SECONDS` with a warning; a refused credential waits the longest backoff.

What has reached the centre is kept in a small ledger in the node's data directory (``node-uploads.json``,
written atomically): the files completed and the recordings sealed, with the manifest SHA-256 the centre
sealed. The disk quota (provincial_nodes/quota.py) evicts only recordings the ledger says are sealed. A
lost ledger costs requests, not data: the centre answers a sealed upload's requests the same again.

Nothing is logged per chunk above DEBUG; the credential never reaches a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from meetings.errors import MeetingsError
from recordings.atomic import write_atomically
from recordings.errors import RecordingError
from recordings.incoming import KEY_RE, NAME_RE
from recordings.journal import JOURNAL_NAME
from recordings.manifest import MANIFEST_NAME, file_sha256, load_manifest

from .control import MAX_BACKOFF_SECONDS, backoff_seconds
from .errors import ControlRefused, UploadError, UploadRefused, UploadStopped
from .local_recordings import LocalRecording, NodeArchive
from .quota import RecordingsQuota

log = logging.getLogger("provincial_nodes.upload")

LEDGER_NAME = "node-uploads.json"
OFFSET_TYPE = "application/offset+octet-stream"
#: One PATCH: ~5 s on a 1.5 Mbit/s provincial uplink (the centre takes up to 8 MiB).
CHUNK_BYTES = 1 << 20
#: A file whose checksum the centre refuses this often in one pass is left for the next pass.
MAX_RESTARTS = 3
#: How often the node looks for recordings to upload when all is well.
SCAN_SECONDS = 60.0
#: A recording the centre refused is tried again after this long (and at every start).
REFUSED_RETRY_SECONDS = 3600.0
CONNECT_TIMEOUT_SECONDS = 15.0
#: No answer (or no progress reading one) for this long is a cut.
READ_TIMEOUT_SECONDS = 120.0

#: Error codes of the centre that say "not now" rather than "not this": the body ended early (a cut).
TRANSIENT_CODES = frozenset({"incomplete_body"})

Progress = Callable[[str, str, int, int], None]


class UploadLedger:
    """What has reached the centre: per recording key, the files completed (name -> SHA-256) and the seal
    (the centre's recording id, the meeting, the manifest SHA-256 it sealed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, dict[str, str]] = {}
        self.sealed: dict[str, dict[str, Any]] = {}

    @classmethod
    def load(cls, path: Path) -> UploadLedger:
        ledger = cls(path)
        try:
            data = json.loads(path.read_bytes())
            files, sealed = data["files"], data["sealed"]
            if not isinstance(files, dict) or not isinstance(sealed, dict):
                raise TypeError("files and sealed are objects")
            ledger.files = {str(k): {str(n): str(h) for n, h in v.items()} for k, v in files.items()}
            ledger.sealed = {str(k): dict(v) for k, v in sealed.items()}
        except FileNotFoundError:
            pass
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            aside = path.with_name(path.name + ".unreadable")
            with contextlib.suppress(OSError):
                os.replace(path, aside)
            log.warning("the upload ledger %s is unreadable (%s): set aside, starting afresh (the centre answers "
                        "what it already holds)", path, exc, extra={"event": "node.upload_ledger_unreadable"})
        return ledger

    def save(self) -> None:
        data = json.dumps({"version": 1, "files": self.files, "sealed": self.sealed}, sort_keys=True,
                          indent=1).encode("utf-8") + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, data, mode=0o600)

    def is_sealed(self, recording: LocalRecording) -> bool:
        return self.sealed.get(recording.key, {}).get("manifest_sha256") == recording.manifest_sha256

    def sealed_manifests(self) -> dict[str, str]:
        """key -> the manifest SHA-256 the centre sealed (what the quota may evict)."""
        return {key: str(entry.get("manifest_sha256")) for key, entry in self.sealed.items()}


@dataclass
class UploadStats:
    """What the uploader did since it started (for the node's console and the tests)."""

    #: Body bytes sent in PATCH requests (including any a cut lost on the way).
    bytes_sent: int = 0
    files_completed: int = 0
    recordings_sealed: int = 0
    #: Files the centre's checksum refused, sent again from 0.
    restarts: int = 0
    #: Passes cut short (connection errors, timeouts, the centre unavailable).
    interruptions: int = 0
    last_error: str = ""
    refused: dict[str, str] = field(default_factory=dict)


def upload_files(directory: Path) -> list[str]:
    """The files of a sealed folder to send, in order: the media files its manifest lists as present, the
    journal, and the manifest last (the centre checks the others against it)."""
    manifest = load_manifest(directory)
    names: list[str] = []
    for entry in manifest.get("files", []):
        if isinstance(entry, dict) and entry.get("present"):
            name = str(entry.get("name"))
            if not NAME_RE.fullmatch(name):
                raise RecordingError(f"{directory.name}: {name!r} is not a file name the centre accepts")
            names.append(name)
    if (directory / JOURNAL_NAME).is_file():
        names.append(JOURNAL_NAME)
    return names + [MANIFEST_NAME]


def read_chunk(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


class RecordingUploader:
    def __init__(self, upstream_url: str, credential: str, archive: NodeArchive, ledger_path: Path, *,
                 quota: RecordingsQuota | None = None, chunk_bytes: int = CHUNK_BYTES,
                 scan_seconds: float = SCAN_SECONDS, ssl: Any = None, rng: random.Random | None = None,
                 on_progress: Progress | None = None) -> None:
        if not upstream_url.startswith(("http://", "https://")):
            raise ValueError("the upstream URL is http(s)://host[:port]")
        if not 1 <= chunk_bytes <= 8 * 2**20:
            raise ValueError("a chunk is 1 byte to 8 MiB")
        self.base = upstream_url.rstrip("/") + "/nodes/uploads/"
        self._credential = credential
        self.archive = archive
        self.ledger = UploadLedger.load(ledger_path)
        self.quota = quota
        self.chunk_bytes = chunk_bytes
        self.scan_seconds = scan_seconds
        self.on_progress = on_progress
        self.stats = UploadStats()
        self._ssl = ssl
        self._rng = rng or random.Random()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._refused_at: dict[str, float] = {}
        self._seal_conflicts: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:  # never the credential
        return f"RecordingUploader({self.base!r}, sealed={self.stats.recordings_sealed})"

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(), name="node-recording-uploader")
        self._task.add_done_callback(self._ended)

    @staticmethod
    def _ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("the node's recording uploader stopped: %s", task.exception(), exc_info=task.exception(),
                         extra={"event": "node.upload_failed"})

    def request_stop(self) -> None:
        """Stop before the next chunk (:meth:`stop` also waits for it)."""
        self._stopping.set()
        self._wake.set()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop after the chunk in flight (cancelled if it takes longer than ``timeout``)."""
        self.request_stop()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Look for recordings now (a session's recording was just sealed)."""
        self._wake.set()

    async def run(self) -> None:
        """Upload until :meth:`stop`: a pass, the quota, then a wait (backoff after a cut)."""
        attempt = 0
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_SECONDS, sock_read=READ_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self._stopping.is_set():
                delay = self.scan_seconds
                try:
                    await self.run_pass(http)
                    attempt = 0
                except UploadStopped:
                    break
                except ControlRefused as exc:
                    self.stats.last_error = str(exc)
                    log.warning("the centre refused this node's uploads: %s", exc,
                                extra={"event": "node.upload_refused"})
                    delay, attempt = MAX_BACKOFF_SECONDS, 10
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError, UploadError, MeetingsError) as exc:
                    if self._stopping.is_set():
                        break
                    self.stats.interruptions += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"
                    log.info("recording upload interrupted: %s", self.stats.last_error,
                             extra={"event": "node.upload_interrupted"})
                    delay = backoff_seconds(attempt, self._rng)
                    attempt += 1
                await self.enforce_quota()
                if self._stopping.is_set():
                    break
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def enforce_quota(self) -> None:
        if self.quota is None:
            return
        try:
            await self.quota.enforce(self.ledger.sealed_manifests())
        except (MeetingsError, RecordingError, OSError) as exc:
            log.warning("the recordings quota could not be applied: %s", exc, extra={"event": "node.quota_failed"})

    # -- one pass --------------------------------------------------------------------------------------

    async def run_pass(self, http: aiohttp.ClientSession) -> int:
        """Upload every sealed recording the centre lacks; how many were sealed at the centre."""
        sealed = 0
        now = time.monotonic()
        for recording in await self.archive.sealed():
            if self.ledger.is_sealed(recording):
                continue
            refused_at = self._refused_at.get(recording.key)
            if refused_at is not None and now - refused_at < REFUSED_RETRY_SECONDS:
                continue
            try:
                await self.upload(http, recording)
            except UploadRefused as exc:
                self._refused_at[recording.key] = time.monotonic()
                self.stats.refused[recording.key] = str(exc)
                log.warning("the centre refused recording %s: %s", recording.key, exc, extra={
                    "event": "node.upload_recording_refused", "recording_id": recording.recording_id,
                    "meeting_id": recording.meeting_id, "status": exc.status})
                continue
            except (RecordingError, ValueError) as exc:  # the node's own folder is unusable
                self._refused_at[recording.key] = time.monotonic()
                self.stats.refused[recording.key] = str(exc)
                log.warning("recording %s cannot be uploaded: %s", recording.key, exc,
                            extra={"event": "node.upload_unusable", "recording_id": recording.recording_id})
                continue
            sealed += 1
        return sealed

    async def upload(self, http: aiohttp.ClientSession, recording: LocalRecording) -> None:
        """Send one recording's files (resuming each) and seal it at the centre."""
        if not KEY_RE.fullmatch(recording.key):
            raise RecordingError(f"{recording.key!r} is not a key the centre accepts")
        names = await asyncio.to_thread(upload_files, recording.directory)
        for name in names:
            await self._send_file(http, recording, name)
        await self._seal(http, recording)

    # -- files -----------------------------------------------------------------------------------------

    def _url(self, key: str, *rest: str) -> str:
        return self.base + "/".join(quote(part, safe="") for part in (key, *rest))

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._credential}", "Tus-Resumable": "1.0.0", **extra}

    def _request(self, http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
        return http.request(method, url, ssl=True if self._ssl is None else self._ssl, **kwargs)

    async def _send_file(self, http: aiohttp.ClientSession, recording: LocalRecording, name: str) -> None:
        path = recording.directory / name
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
            sha = await asyncio.to_thread(file_sha256, path)
        except FileNotFoundError:
            raise RecordingError(f"{recording.key}: {name} is missing on the node") from None
        if self.ledger.files.get(recording.key, {}).get(name) == sha:
            return  # completed at the centre before (this run or an earlier one)
        url = self._url(recording.key, name)
        for _ in range(MAX_RESTARTS):
            offset = await self._offset(http, url)
            while offset < size:
                if self._stopping.is_set():
                    raise UploadStopped("stopping")
                chunk = await asyncio.to_thread(read_chunk, path, offset, self.chunk_bytes)
                if not chunk:
                    raise RecordingError(f"{name} is shorter than {size} bytes: it changed while being sent")
                offset = await self._patch(http, url, offset, chunk)
                if self.on_progress is not None:
                    self.on_progress(recording.key, name, offset, size)
            # offset == size, or more than the node has (the centre's copy is not ours): let the checksum decide
            if await self._complete(http, url, sha):
                self.ledger.files.setdefault(recording.key, {})[name] = sha
                await asyncio.to_thread(self.ledger.save)
                self.stats.files_completed += 1
                return
            self.stats.restarts += 1
            log.warning("the centre's copy of %s/%s differed from the node's: sending it again from 0",
                        recording.key, name, extra={"event": "node.upload_restart", "file": name})
        raise UploadError(f"{name}: the centre refused its checksum {MAX_RESTARTS} times")

    async def _offset(self, http: aiohttp.ClientSession, url: str) -> int:
        async with self._request(http, "HEAD", url, headers=self._headers()) as response:
            await self._check(response, "HEAD")
            return _offset_of(response)

    async def _patch(self, http: aiohttp.ClientSession, url: str, offset: int, chunk: bytes) -> int:
        """Append ``chunk`` at ``offset``; the centre's offset after it (on a 409, the one it holds)."""
        self.stats.bytes_sent += len(chunk)
        headers = self._headers(**{"Upload-Offset": str(offset), "Content-Type": OFFSET_TYPE})
        async with self._request(http, "PATCH", url, data=chunk, headers=headers) as response:
            await response.read()
            if response.status in (204, 409):  # 409: not where the centre is; resume from its offset
                new = _offset_of(response)
                if response.status == 409 and new == offset:  # and yet the centre holds exactly that: refused
                    raise UploadRefused(f"PATCH: {await _error_message(response)}", 409)
                log.debug("chunk sent", extra={"event": "node.upload_chunk", "offset": offset, "bytes": len(chunk),
                                               "status": response.status, "now": new})
                return new
            await self._check(response, "PATCH")
            raise UploadError(f"PATCH answered {response.status}")

    async def _complete(self, http: aiohttp.ClientSession, url: str, sha: str) -> bool:
        async with self._request(http, "POST", url + "/complete", json={"sha256": sha},
                                 headers=self._headers()) as response:
            if response.status == 409:
                await response.read()
                return False
            await self._check(response, "complete")
            body = await response.json(content_type=None)
            if not isinstance(body, dict) or body.get("sha256") != sha:
                raise UploadError("the centre's answer to complete names another SHA-256")
            return True

    async def _seal(self, http: aiohttp.ClientSession, recording: LocalRecording) -> None:
        url = self._url(recording.key, "seal")
        async with self._request(http, "POST", url, json={"meeting_id": recording.meeting_id},
                                 headers=self._headers()) as response:
            if response.status == 409:
                # Files the centre does not hold as the manifest says: the next pass asks it again for each
                # (and sends what it lacks); refused for good when that does not help.
                self.ledger.files.pop(recording.key, None)
                await asyncio.to_thread(self.ledger.save)
                conflicts = self._seal_conflicts[recording.key] = self._seal_conflicts.get(recording.key, 0) + 1
                if conflicts < 2:
                    raise UploadError(f"seal: {await _error_message(response)}")
            await self._check(response, "seal")
            body = await response.json(content_type=None)
        self._seal_conflicts.pop(recording.key, None)
        if not isinstance(body, dict) or body.get("manifest_sha256") != recording.manifest_sha256:
            raise UploadRefused("the centre sealed another manifest than the node's", 409)
        self.ledger.sealed[recording.key] = {
            "recording_id": body.get("recording_id"), "meeting_id": recording.meeting_id,
            "manifest_sha256": recording.manifest_sha256, "sealed_at": dt.datetime.now(dt.UTC).isoformat()}
        self.ledger.files.pop(recording.key, None)
        await asyncio.to_thread(self.ledger.save)
        self.stats.recordings_sealed += 1
        log.info("recording uploaded and sealed at the centre", extra={
            "event": "node.recording_uploaded", "recording_id": recording.recording_id, "key": recording.key,
            "meeting_id": recording.meeting_id, "centre_recording_id": body.get("recording_id")})

    async def _check(self, response: aiohttp.ClientResponse, what: str) -> None:
        """Raise for an answer that is not a success: ControlRefused (401/403: the credential), UploadRefused
        (400, 404, 409, 413: the recording itself), UploadError (anything else: tried again)."""
        if response.status < 300:
            return
        code, message = await _error_of(response)
        if response.status in (401, 403):
            raise ControlRefused(f"credential refused ({response.status})")
        if response.status in (400, 404, 409, 413) and code not in TRANSIENT_CODES:
            raise UploadRefused(f"{what}: {message}", response.status)
        raise UploadError(f"{what} answered {response.status}: {message}")


def _offset_of(response: aiohttp.ClientResponse) -> int:
    raw = response.headers.get("Upload-Offset", "")
    if not raw.isdigit() or len(raw) > 18:
        raise UploadError(f"the centre's Upload-Offset {raw[:20]!r} is not a number of bytes")
    return int(raw)


async def _error_of(response: aiohttp.ClientResponse) -> tuple[str, str]:
    """The centre's error code and message (web/middleware.py's shape), or the HTTP reason."""
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return "", response.reason or str(response.status)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", response.reason or str(response.status)
    return str(error.get("code", "")), str(error.get("message", ""))[:300]


async def _error_message(response: aiohttp.ClientResponse) -> str:
    return (await _error_of(response))[1]


def ledger_path(data_dir: Path) -> Path:
    return data_dir / LEDGER_NAME


__all__ = ["RecordingUploader", "UploadLedger", "UploadStats", "ledger_path", "upload_files"]
