"""A provincial node's recordings reach the centre by a resumable upload (web/views/node_uploads.py, the
node's provincial_nodes/upload.py), and the node's disk quota evicts only what the centre holds
(provincial_nodes/quota.py).

The centre is the real server on loopback; the node is a database of its own filled from the centre's
snapshot of its office, with real recording folders (VP8/Opus WebM encoded here, journal, manifest) and
closed rows, as the node's recorder leaves them. Cuts are real: a proxy on loopback that drops the
connection in the middle of a file, and an uploader stopped mid-file and replaced by a new one (a restart)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from cabinet.errors import ConfigError
from harness import Client, LiveServer, make_config
from meetings import db as database
from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.models import Recording, RecordingState
from meetings.policy import Caller
from meetings.services import Services
from provincial_nodes.errors import ControlRefused, UploadRefused, UploadStopped
from provincial_nodes.local_recordings import LocalRecording, NodeArchive
from provincial_nodes.quota import RecordingsQuota
from provincial_nodes.replica import apply_snapshot
from provincial_nodes.upload import RecordingUploader, upload_files
from record_fixtures import open_session
from recordings.errors import UploadConflict
from recordings.incoming import INCOMING_DIR, IncomingUpload
from recordings.manifest import file_sha256, verify
from recordings.tombstone import TOMBSTONE_NAME
from test_archive_web import make_folder
from test_node_control import register, revoke

pytestmark = [pytest.mark.timeout(300)]

CLI = Caller.cli()
SERVER = Caller(principal=None, address="server", system=True)
SECRET = "node-upload-test-secret-0123456789abcdef"
CHUNK = 16 * 1024


# ------------------------------------------------------------------------------------------- the node

@dataclasses.dataclass
class Node:
    node_id: int
    credential: str
    services: Services
    archive: Path
    data: Path
    office_id: int
    snapshot: dict[str, Any]

    def uploader(self, url: str, **kwargs: Any) -> RecordingUploader:
        kwargs.setdefault("chunk_bytes", CHUNK)
        kwargs.setdefault("rng", random.Random(3))
        return RecordingUploader(url, self.credential, NodeArchive(self.services, self.archive),
                                 self.data / "node-uploads.json", **kwargs)

    def meeting(self, kind: str = "cabinet_session") -> int:
        return next(m["id"] for m in self.snapshot["meetings"] if m["kind"] == kind)


@pytest.fixture
async def node(live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    """A node of KH-17 (invited to the cabinet session, not to MR-4's briefing), with its own database."""
    node_id, credential = await register(live_server, "KH-17", f"Siem Reap uploads {request.node.name[:30]}")
    centre = live_server.services()
    try:
        snapshot = await centre.nodes.office_snapshot(await centre.nodes.active_node(node_id))
    finally:
        await centre.db.dispose()
    url = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    database.upgrade(url)
    services = Services.build(Database(url), MeetingsConfig(), SECRET)
    await apply_snapshot(services.db, snapshot)
    yield Node(node_id, credential, services, tmp_path / "node-recordings", tmp_path / "node-data",
               snapshot["office"]["id"], snapshot)
    await services.db.dispose()


async def record_on_node(node: Node, meeting_id: int, *, seconds: float = 3) -> LocalRecording:
    """A sealed recording of ``meeting_id`` on the node: folder, manifest and a closed row."""
    s = node.services
    meeting = await s.meetings.get(CLI, meeting_id)
    if meeting.state.value != "open":
        await open_session(s, meeting_id, dt.datetime.now(dt.UTC))
    row = await s.recordings.start(CLI, meeting_id)
    folder = node.archive / row.key
    sha, size, manifest = await asyncio.to_thread(make_folder, folder, seconds=seconds, recording_id=row.id,
                                                  items=[], speakers=[], with_pause=False)
    await s.recordings.register_files(SERVER, row.id, manifest)
    closed = await s.recordings.close(SERVER, row.id, manifest_sha256=sha, size_bytes=size,
                                      duration_ms=manifest["duration_ms"])
    return LocalRecording(closed.id, closed.key, meeting_id, closed.started_at, sha, folder)


def folder_bytes(recording: LocalRecording) -> int:
    return sum((recording.directory / name).stat().st_size for name in upload_files(recording.directory))


async def centre_row(server: LiveServer, key: str) -> Recording | None:
    services = server.services()
    try:
        async with services.db.read() as session:
            return await session.scalar(select(Recording).where(Recording.key == key))
    finally:
        await services.db.dispose()


async def centre_events(server: LiveServer, prefix: str) -> list[dict[str, Any]]:
    services = server.services()
    try:
        events = await services.audit.recent(CLI, limit=500, action_prefix=prefix)
        return [{"action": e.action, "target_id": e.target_id, "actor_office_id": e.actor_office_id,
                 **(json.loads(e.details) if isinstance(e.details, str) else dict(e.details or {}))} for e in events]
    finally:
        await services.db.dispose()


def assert_same_files(local: LocalRecording, centre_folder: Path) -> None:
    for name in upload_files(local.directory):
        assert file_sha256(centre_folder / name) == file_sha256(local.directory / name), name
    assert verify(centre_folder, local.manifest_sha256) == []


def staging(server: LiveServer, node: Node, key: str) -> Path:
    return server.config.archive_path / INCOMING_DIR / str(node.node_id) / key


def auth(node: Node) -> dict[str, str]:
    return {"Authorization": f"Bearer {node.credential}"}


# ------------------------------------------------------------------------------------ a cutting proxy

class CuttingProxy:
    """A TCP proxy on loopback to the centre that drops every connection once, after ``cut_after`` bytes
    have gone from the node to the centre (a WAN cut in the middle of a PATCH)."""

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.forwarded = 0
        self.cuts = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, upward: bool) -> None:
            try:
                while data := await src.read(4096):
                    if upward and not self.cuts and self.forwarded + len(data) >= self.cut_after:
                        dst.write(data[: self.cut_after - self.forwarded])
                        await dst.drain()
                        self.forwarded = self.cut_after
                        self.cuts += 1
                        for w in (writer, up_writer):
                            w.transport.abort()
                        return
                    if upward:
                        self.forwarded += len(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))


# ------------------------------------------------------------------------------------------- tests

async def test_a_recording_reaches_the_centre_with_its_checksums_and_the_meetings_visibility(
        live_server: LiveServer, node: Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    session = node.meeting()
    local = await record_on_node(node, session)
    uploader = node.uploader(live_server.url)
    async with aiohttp.ClientSession() as http:
        assert await uploader.run_pass(http) == 1
        assert await uploader.run_pass(http) == 0, "sealed once, not uploaded again"
    assert uploader.stats.recordings_sealed == 1 and uploader.stats.restarts == 0
    assert uploader.stats.bytes_sent == folder_bytes(local), "every byte once"

    row = await centre_row(live_server, local.key)
    assert row is not None and row.state is RecordingState.CLOSED and row.meeting_id == session
    assert row.manifest_sha256 == local.manifest_sha256 and row.started_by_id is None
    media = {f.name: f for f in row.files}
    assert set(media) == {n for n in upload_files(local.directory) if n.endswith(".webm")}
    assert all(media[n].sha256 == file_sha256(local.directory / n) for n in media)
    centre_folder = live_server.config.archive_path / local.key
    assert_same_files(local, centre_folder)
    assert not staging(live_server, node, local.key).exists(), "moved out of the staging area"
    assert uploader.ledger.sealed[local.key]["recording_id"] == row.id
    assert json.loads((node.data / "node-uploads.json").read_text())["sealed"][local.key]["manifest_sha256"] == \
        local.manifest_sha256

    # On /archive exactly with the meeting's visibility: the invited governor sees it, the commander does not.
    for username, visible in (("governor", True), ("commander", False)):
        async with Client(live_server.url) as client:
            await client.login(username)
            status, body = await client.api("GET", "/api/recordings")
            assert status == 200 and (row.id in {r["id"] for r in body["recordings"]}) == visible, username
            status, _ = await client.page(f"/archive/{row.id}")
            assert status == (200 if visible else 404), username
            if visible:
                async with client.http.get(f"/archive/{row.id}/files/proceedings.webm") as response:
                    assert response.status == 200
                    assert hashlib.sha256(await response.read()).hexdigest() == file_sha256(
                        local.directory / "proceedings.webm")

    # Audited once, naming the node; sealing again answers the same and changes nothing.
    events = [e for e in await centre_events(live_server, "recording.node_upload") if e["key"] == local.key]
    assert len(events) == 1 and events[0]["node_id"] == node.node_id and events[0]["office"] == "KH-17"
    assert events[0]["manifest_sha256"] == local.manifest_sha256 and events[0]["actor_office_id"] == node.office_id
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{live_server.url}/nodes/uploads/{local.key}/seal", json={"meeting_id": session},
                             headers=auth(node)) as response:
            assert response.status == 200
            again = await response.json()
        assert again["already_sealed"] is True and again["recording_id"] == row.id
        async with http.head(f"{live_server.url}/nodes/uploads/{local.key}/proceedings.webm",
                             headers=auth(node)) as response:
            assert response.status == 200
            assert int(response.headers["Upload-Offset"]) == (local.directory / "proceedings.webm").stat().st_size
        async with http.patch(f"{live_server.url}/nodes/uploads/{local.key}/proceedings.webm", data=b"x",
                              headers={**auth(node), "Upload-Offset": "0",
                                       "Content-Type": "application/offset+octet-stream"}) as response:
            assert response.status == 409, "a sealed upload takes no more bytes"
    assert len([e for e in await centre_events(live_server, "recording.node_upload") if e["key"] == local.key]) == 1
    assert_same_files(local, centre_folder)
    # A lost ledger costs requests, not data: the centre answers what it holds, nothing is sent again.
    (node.data / "node-uploads.json").unlink()
    fresh = node.uploader(live_server.url)
    async with aiohttp.ClientSession() as http:
        assert await fresh.run_pass(http) == 1
    assert fresh.stats.bytes_sent == 0 and fresh.ledger.sealed[local.key]["recording_id"] == row.id
    logged = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    assert node.credential not in logged and node.credential[13:] not in logged
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG and "chunk" in r.getMessage()]


async def test_a_cut_in_the_middle_of_a_file_resumes_where_the_centre_stopped(
        live_server: LiveServer, node: Node) -> None:
    local = await record_on_node(node, node.meeting(), seconds=4)
    first = upload_files(local.directory)[0]
    first_size = (local.directory / first).stat().st_size
    total = folder_bytes(local)
    chunk = 4096
    assert first_size > 6 * chunk
    proxy = CuttingProxy(live_server.port, cut_after=first_size // 2)
    url = await proxy.start()
    uploader = node.uploader(url, chunk_bytes=chunk)
    offsets: list[tuple[str, int, int]] = []  # (file, offset the centre acknowledged, cuts so far)
    uploader.on_progress = lambda key, name, offset, size: offsets.append(
        (name, offset, uploader.stats.interruptions))
    try:
        uploader.start()
        for _ in range(600):
            if uploader.stats.recordings_sealed:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"not sealed: {uploader.stats}")
    finally:
        await uploader.stop()
        await proxy.stop()
    assert proxy.cuts == 1 and uploader.stats.interruptions == 1, uploader.stats
    assert_same_files(local, live_server.config.archive_path / local.key)
    # The cut came halfway through the first file; after it, that file went on from what the centre held
    # (the chunks acknowledged before the cut), never from 0.
    before = [offset for name, offset, cuts in offsets if name == first and cuts == 0]
    after = [offset for name, offset, cuts in offsets if name == first and cuts == 1]
    assert before and after and after[0] > before[-1] >= first_size // 2 - 2 * chunk, offsets
    assert after[0] - before[-1] <= 2 * chunk, "resumed at the stored offset"
    # The bytes sent are one copy of the folder, plus at most the chunk the cut caught on the way (not 1.5).
    assert total <= uploader.stats.bytes_sent <= total + chunk, (uploader.stats.bytes_sent, total)


async def test_a_node_restarted_mid_file_resumes_from_the_stored_offset(live_server: LiveServer, node: Node) -> None:
    local = await record_on_node(node, node.meeting(), seconds=4)
    first = upload_files(local.directory)[0]
    first_size = (local.directory / first).stat().st_size
    before = node.uploader(live_server.url)

    def halfway(key: str, name: str, offset: int, size: int) -> None:
        if name == first and offset >= size // 2:
            before.request_stop()

    before.on_progress = halfway
    async with aiohttp.ClientSession() as http:
        with pytest.raises(UploadStopped):
            await before.run_pass(http)
    held = (staging(live_server, node, local.key) / first).stat().st_size
    assert first_size // 2 <= held < first_size and held == before.stats.bytes_sent, (held, first_size)
    assert await centre_row(live_server, local.key) is None, "nothing sealed yet"

    after = node.uploader(live_server.url)  # the node restarted: a new uploader, the same ledger
    resumed: list[int] = []
    after.on_progress = lambda key, name, offset, size: resumed.append(offset) if name == first else None
    async with aiohttp.ClientSession() as http:
        assert await after.run_pass(http) == 1
    assert resumed[0] == min(first_size, held + CHUNK), "the first chunk after the restart starts at the offset held"
    assert before.stats.bytes_sent + after.stats.bytes_sent == folder_bytes(local), "no byte sent twice"
    assert_same_files(local, live_server.config.archive_path / local.key)


async def test_a_wrong_checksum_is_refused_and_the_file_starts_again(live_server: LiveServer, node: Node) -> None:
    local = await record_on_node(node, node.meeting())
    base = f"{live_server.url}/nodes/uploads/{local.key}"
    patch_headers = {**auth(node), "Content-Type": "application/offset+octet-stream"}
    async with aiohttp.ClientSession() as http:
        # By hand: bytes the node does not have, then its true checksum: 409, removed, offset 0.
        async with http.patch(f"{base}/proceedings.webm", data=b"not the node's file" * 50,
                              headers={**patch_headers, "Upload-Offset": "0"}) as response:
            assert response.status == 204 and response.headers["Upload-Offset"] == "950"
        wrong = hashlib.sha256(b"something else").hexdigest()
        async with http.post(f"{base}/proceedings.webm/complete", json={"sha256": wrong},
                             headers=auth(node)) as response:
            assert response.status == 409 and response.headers["Upload-Offset"] == "0"
            assert "differs" in (await response.json())["error"]["message"]
        async with http.head(f"{base}/proceedings.webm", headers=auth(node)) as response:
            assert response.headers["Upload-Offset"] == "0"
        assert not (staging(live_server, node, local.key) / "proceedings.webm").exists()
        # The centre holds a wrong beginning: the uploader resumes after it, is refused at complete, and
        # sends the file again from 0.
        async with http.patch(f"{base}/proceedings.webm", data=b"\0" * 1000,
                              headers={**patch_headers, "Upload-Offset": "0"}) as response:
            assert response.status == 204
        uploader = node.uploader(live_server.url)
        assert await uploader.run_pass(http) == 1
    assert uploader.stats.restarts == 1
    size = (local.directory / "proceedings.webm").stat().st_size
    assert uploader.stats.bytes_sent == folder_bytes(local) + size - 1000
    assert_same_files(local, live_server.config.archive_path / local.key)


async def test_a_node_cannot_seal_into_another_offices_meeting(live_server: LiveServer, node: Node) -> None:
    local = await record_on_node(node, node.meeting())
    centre = live_server.services()
    try:
        briefing = next(m.id for m in await centre.meetings.list_visible(CLI) if m.kind.value == "briefing")
    finally:
        await centre.db.dispose()
    assert briefing not in {m["id"] for m in node.snapshot["meetings"]}
    uploader = node.uploader(live_server.url)
    await live_server.in_server(lambda s: s.refusals.flush())
    async with aiohttp.ClientSession() as http:
        for meeting_id in (briefing, 999_999):
            with pytest.raises(UploadRefused) as refused:
                await uploader.upload(http, dataclasses.replace(local, meeting_id=meeting_id))
            assert refused.value.status == 404 and "no such meeting" in str(refused.value)
    assert await centre_row(live_server, local.key) is None
    assert not (live_server.config.archive_path / local.key).exists()
    assert staging(live_server, node, local.key).is_dir(), "staged as it was: nothing moved"
    await live_server.in_server(lambda s: s.refusals.flush())
    refusals = [e for e in await centre_events(live_server, "access.refused")
                if e["target_id"] == str(node.node_id)]
    routes = json.dumps([e["routes"] for e in refusals])
    assert f"node upload (meeting {briefing})" in routes and "node upload (meeting 999999)" in routes
    # Its own meeting: sealed.
    async with aiohttp.ClientSession() as http:
        assert await uploader.run_pass(http) == 1
    assert (await centre_row(live_server, local.key)).meeting_id == node.meeting()  # type: ignore[union-attr]


async def test_bad_keys_names_offsets_and_bodies_are_400_and_change_nothing(
        live_server: LiveServer, node: Node) -> None:
    key = "GoodKey_0123456789abcdef-XYZ"
    base = f"{live_server.url}/nodes/uploads"
    octets = {**auth(node), "Content-Type": "application/offset+octet-stream"}
    async with aiohttp.ClientSession() as http:
        async def status(method: str, path: str, **kwargs: Any) -> int:
            async with http.request(method, aiohttp.client.URL(base + path, encoded=True), **kwargs) as response:
                await response.read()
                if response.status == 400 and method != "HEAD":
                    body = await response.json()
                    assert body["error"]["message"], body
                return response.status

        for bad_key in ("short", "a" * 65, "..", "%2e%2e", ".hiddenkey0123456789", "dot.ted.key.0123456789",
                        "sp%20ace0123456789abcdef"):
            assert await status("HEAD", f"/{bad_key}/proceedings.webm", headers=auth(node)) == 400, bad_key
            assert await status("PATCH", f"/{bad_key}/proceedings.webm", data=b"x",
                                headers={**octets, "Upload-Offset": "0"}) == 400, bad_key
            assert await status("POST", f"/{bad_key}/seal", json={"meeting_id": 1}, headers=auth(node)) == 400
        for bad_name in ("..", "%2e%2e", ".hidden.webm", "x.exe", "track-1-audio.webm", "manifest.json.tmp",
                         "journal.jsonl%00", "proceedings.webm.", "PROCEEDINGS.webm", "tombstone.json"):
            assert await status("HEAD", f"/{key}/{bad_name}", headers=auth(node)) == 400, bad_name
            assert await status("PATCH", f"/{key}/{bad_name}", data=b"x",
                                headers={**octets, "Upload-Offset": "0"}) == 400, bad_name
            assert await status("POST", f"/{key}/{bad_name}/complete", json={"sha256": "0" * 64},
                                headers=auth(node)) == 400, bad_name
        assert await status("HEAD", f"/{key}/..%2F..%2Fsecret.key", headers=auth(node)) in (400, 404)
        for bad_offset in ("abc", "-1", "1.5", "", " ", "0x10", "1e3", "9" * 30):
            assert await status("PATCH", f"/{key}/proceedings.webm", data=b"x",
                                headers={**octets, "Upload-Offset": bad_offset}) == 400, bad_offset
        assert await status("PATCH", f"/{key}/proceedings.webm", data=b"x", headers=octets) == 400  # no offset
        assert await status("PATCH", f"/{key}/proceedings.webm", data=b"x",
                            headers={**auth(node), "Upload-Offset": "0",
                                     "Content-Type": "application/octet-stream"}) == 400
        assert await status("PATCH", f"/{key}/proceedings.webm", data=b"x",
                            headers={**octets, "Upload-Offset": str(8192 * 2**20)}) == 413, "beyond the file limit"
        for body in ("not json", "[]", '{"sha256": "XYZ"}', '{"sha256": 5}', '{}',
                     '{"sha256": "' + "0" * 64 + '", "extra": 1}'):
            assert await status("POST", f"/{key}/proceedings.webm/complete", data=body,
                                headers={**auth(node), "Content-Type": "application/json"}) == 400, body
        for body in ("not json", '{"meeting_id": "abc"}', '{"meeting_id": 1.5}', "{}", '{"meeting_id": -3}',
                     '{"meeting_id": 1, "path": "../x"}', '{"meeting_id": 99999999999999999999}'):
            assert await status("POST", f"/{key}/seal", data=body,
                                headers={**auth(node), "Content-Type": "application/json"}) == 400, body
        # An offset that is not the stored size: 409 with the offset to resume from.
        async with http.patch(f"{base}/{key}/proceedings.webm", data=b"x",
                              headers={**octets, "Upload-Offset": "5"}) as response:
            assert response.status == 409 and response.headers["Upload-Offset"] == "0"
        # Sealing with nothing uploaded, or a manifest missing: 409.
        assert await status("POST", f"/{key}/seal", json={"meeting_id": node.meeting()}, headers=auth(node)) == 409
    incoming = live_server.config.archive_path / INCOMING_DIR / str(node.node_id)
    assert not incoming.exists() or not any(incoming.iterdir()), "nothing was written"


async def test_missing_unknown_and_revoked_credentials_are_401_before_anything_else(
        live_server: LiveServer, node: Node) -> None:
    key = "GoodKey_0123456789abcdef-XYZ"
    local = await record_on_node(node, node.meeting())
    base = f"{live_server.url}/nodes/uploads"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer not-a-credential"}, {"Authorization": "Bearer cabn_" + "A" * 43},
                        {"Authorization": f"Basic {node.credential}"}, {"Authorization": "Bearer "}):
            for method, path in (("HEAD", f"/{key}/proceedings.webm"), ("PATCH", f"/{key}/proceedings.webm"),
                                 ("POST", f"/{key}/proceedings.webm/complete"), ("POST", f"/{key}/seal"),
                                 ("HEAD", "/../etc"), ("PATCH", "/x/..")):
                async with http.request(method, base + path, data=None if method == "HEAD" else b"{}", headers={
                        **headers, "Upload-Offset": "abc", "Content-Type": "text/plain"}) as response:
                    assert response.status in ((401, 404) if ".." in path or "/x/" in path else (401,)), (
                        method, path, headers, response.status)
        await revoke(live_server, node.node_id)
        async with http.head(f"{base}/{key}/proceedings.webm", headers=auth(node)) as response:
            assert response.status == 401
        uploader = node.uploader(live_server.url)
        with pytest.raises(ControlRefused):
            await uploader.run_pass(http)
    assert uploader.stats.bytes_sent == 0 and await centre_row(live_server, local.key) is None


async def test_the_quota_evicts_only_what_the_centre_holds_oldest_first(
        live_server: LiveServer, node: Node, caplog: pytest.LogCaptureFixture) -> None:
    oldest = await record_on_node(node, node.meeting(), seconds=2)
    middle = await record_on_node(node, node.meeting(), seconds=2)
    newest = await record_on_node(node, node.meeting(), seconds=2)
    uploader = node.uploader(live_server.url)
    async with aiohttp.ClientSession() as http:  # the middle one has not reached the centre
        await uploader.upload(http, oldest)
        await uploader.upload(http, newest)
    archive = NodeArchive(node.services, node.archive)
    used = await archive.used_bytes()
    media = {r.key: sum(p.stat().st_size for p in r.directory.glob("*.webm")) for r in (oldest, middle, newest)}

    # Evicting the oldest is enough: only it goes (its tombstone is a few hundred bytes).
    assert media[oldest.key] > 8192
    quota = RecordingsQuota(archive, used - media[oldest.key] + 4096)
    plan = await quota.enforce(uploader.ledger.sealed_manifests())
    assert [r.key for r in plan.evict] == [oldest.key] and quota.evicted == 1
    remaining = sorted(p.name for p in oldest.directory.iterdir())
    assert remaining == ["journal.jsonl", "manifest.json", TOMBSTONE_NAME]
    assert json.loads((oldest.directory / TOMBSTONE_NAME).read_text())["by"] == "node quota"
    assert await archive.used_bytes() <= quota.quota_bytes

    # Far over: the newest (at the centre) goes, the middle one (not uploaded) stays, with a warning.
    caplog.set_level(logging.WARNING, logger="provincial_nodes.quota")
    tight = RecordingsQuota(archive, 1)
    plan = await tight.enforce(uploader.ledger.sealed_manifests())
    assert [r.key for r in plan.evict] == [newest.key] and [r.key for r in plan.kept] == [middle.key]
    assert sorted(p.name for p in middle.directory.iterdir() if p.suffix == ".webm") and verify(
        middle.directory, middle.manifest_sha256) == []
    warnings = [r for r in caplog.records if getattr(r, "event", "") == "node.recordings_over_quota"]
    assert len(warnings) == 1 and middle.key in warnings[0].not_uploaded  # type: ignore[attr-defined]
    await tight.enforce(uploader.ledger.sealed_manifests())
    assert len([r for r in caplog.records if getattr(r, "event", "") == "node.recordings_over_quota"]) == 1, \
        "warned once, not at every check"

    # The node's archive rows follow: tombstones for the evicted (audited), the middle one untouched.
    states = {r.key: r for r in await node.services.recordings.list_for_meeting(CLI, node.meeting())}
    assert states[oldest.key].state is RecordingState.DELETED and "quota" in states[oldest.key].delete_reason
    assert states[newest.key].state is RecordingState.DELETED and states[middle.key].state is RecordingState.CLOSED
    deletions = await node.services.audit.recent(CLI, limit=50, action_prefix="recording.delete")
    assert {json.loads(e.details)["key"] for e in deletions} == {oldest.key, newest.key}
    # ...and the centre still has both.
    for local in (oldest, newest):
        assert (await centre_row(live_server, local.key)).state is RecordingState.CLOSED  # type: ignore[union-attr]

    # Once the middle one is uploaded, it may go too.
    async with aiohttp.ClientSession() as http:
        assert await uploader.run_pass(http) == 1
    plan = await tight.enforce(uploader.ledger.sealed_manifests())
    assert [r.key for r in plan.evict] == [middle.key] and plan.kept == []


def test_quota_and_upload_limits_are_validated(tmp_path: Path) -> None:
    assert make_config(tmp_path, **{"provincial_nodes.recordings_quota_mb": 512}).provincial_nodes \
        .recordings_quota_mb == 512
    for key, value in (("provincial_nodes.recordings_quota_mb", -1), ("recordings.node_upload_max_mb", 0),
                       ("provincial_nodes.recordings_quota_mb", "lots")):
        with pytest.raises(ConfigError) as refused:
            make_config(tmp_path, **{key: value})
        assert key in str(refused.value)


def test_a_seal_cut_short_by_a_crash_is_finished_by_the_next_try(tmp_path: Path) -> None:
    """The staging area alone (recordings/incoming.py): the intent written before the rows and the move lets
    a seal that a crash cut short (after the rows, or after the move) finish, once, as it began."""
    local = tmp_path / "node" / "Key_0123456789abcdefghij"
    _, _, manifest = make_folder(local, seconds=1, recording_id=1, items=[], speakers=[], with_pause=False)
    archive = tmp_path / "archive"
    upload = IncomingUpload(archive, 7, local.name)
    for name in upload_files(local):
        data = (local / name).read_bytes()
        fd = upload.open_for_append(name, 0)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        upload.complete(name, hashlib.sha256(data).hexdigest())
    with pytest.raises(UploadConflict):
        upload.open_for_append("proceedings.webm", 0)  # complete: no more bytes
    sealing = upload.begin_seal(42)
    assert sealing.manifest_sha256 == file_sha256(local / "manifest.json")
    assert sealing.size_bytes == sum(f["size"] for f in manifest["files"] if f["present"])
    # The process dies here (the rows may or may not be filed). The next try sees the same intent.
    again = IncomingUpload(archive, 7, local.name)
    with pytest.raises(UploadConflict):
        again.begin_seal(43)  # not as another meeting's
    with pytest.raises(UploadConflict):
        again.open_for_append("journal.jsonl", 0)  # nor takes bytes meanwhile
    assert again.begin_seal(42) == sealing
    os.rename(again.folder, again.final)  # ...and this time it dies right after the move
    last = IncomingUpload(archive, 7, local.name)
    assert last.begin_seal(42).manifest_sha256 == sealing.manifest_sha256
    sealed = last.finish_seal(recording_id=9)
    assert sealed == {"recording_id": 9, "meeting_id": 42, "manifest_sha256": sealing.manifest_sha256,
                      "size_bytes": sealing.size_bytes}
    assert verify(archive / local.name, sealing.manifest_sha256) == []
    assert last.load_state().sealed == sealed and last.stored("proceedings.webm") == (
        local / "proceedings.webm").stat().st_size
    other = IncomingUpload(archive, 7, "Other_0123456789abcdefghij")
    with pytest.raises(UploadConflict, match="nothing was uploaded"):
        other.begin_seal(42)
