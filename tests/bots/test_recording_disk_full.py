"""The archive's disk fills up mid-session (issue 12): the session goes on, the alarm shows, what was
written stays valid and verifies once sealed.

The archive is a small tmpfs in a private mount namespace (tests/test_disk_full.py's Tmpfs); the
server runs inside it, its database on the normal disk. Needs root; skipped otherwise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from bots.bot import Bot
from bots.media_files import PreEncodedMedia
from meetings.policy import Caller
from recordings.manifest import load_manifest, verify
from bot_fixtures import bots, small_media, start_publishing_bots  # noqa: F401 (fixtures)
from server_process import ServerProcess
from session_helpers import eventually, new_session, token_for
from test_disk_full import Tmpfs

pytestmark = [
    pytest.mark.timeout(200),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"),
                       reason="a real full disk needs a tmpfs in a private mount namespace (root)"),
]
CLI = Caller.cli()


@pytest.fixture
def archive_disk(tmp_path: Path) -> Iterator[Tmpfs]:
    fs = Tmpfs(tmp_path / "archive", size="20m")
    try:
        yield fs
    finally:
        fs.close()


async def the_recording(server: ServerProcess, meeting_id: int):  # type: ignore[no-untyped-def]
    services = server.services()
    try:
        found = await services.recordings.list_for_meeting(CLI, meeting_id)
        assert len(found) == 1
        return found[0]
    finally:
        await services.db.dispose()


async def test_a_full_archive_disk_stops_the_recording_not_the_session(
        tmp_path: Path, archive_disk: Tmpfs, small_media: PreEncodedMedia, bots: dict[str, Bot]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data, wrap=archive_disk.enter,
                           env={"CABINET_RECORDINGS__DIRECTORY": str(archive_disk.mount)}).start()
    try:
        meeting_id = await new_session(server)  # type: ignore[arg-type]
        tokens = {name: await token_for(server, name, meeting_id) for name in ("chair", "governor")}  # type: ignore[arg-type]
        await start_publishing_bots(server.url, tokens, small_media, bots)
        chair = bots["chair"].client
        governor_pid = bots["governor"].client.participant_id
        assert (await chair.call("session", {"action": "open"}))["ok"]
        await asyncio.sleep(5)
        archive_disk.fill()

        async def alarmed() -> object:
            recording = await the_recording(server, meeting_id)
            assert "stopped" in recording.alarm, recording.alarm
            return recording

        recording = await eventually(alarmed, timeout=20)
        assert "No space left on device" in recording.alarm or "ENOSPC" in recording.alarm or \
            "space" in recording.alarm.lower(), recording.alarm
        # The session goes on: the floor can be given and taken, the session closed.
        assert (await chair.call("floor", {"action": "grant", "participant_id": governor_pid}))["ok"]
        await asyncio.sleep(2)
        assert (await chair.call("floor", {"action": "revoke"}))["ok"]
        assert (await chair.call("session", {"action": "close"}))["ok"]
        await asyncio.gather(*(asyncio.wait_for(bot.stop(), 20) for bot in bots.values()), return_exceptions=True)
        bots.clear()
        log = (data / "server.log").read_text()
        assert '"recording.alarm"' in log or "recording" in log and "stopped" in log

        # Space comes back; the next start finalises and seals what was written before the disk filled.
        archive_disk.free()
        server.stop()
        server.start()

        async def sealed() -> object:
            found = await the_recording(server, meeting_id)
            assert found.state.value == "closed" and found.manifest_sha256, found.state
            return found

        recording = await eventually(sealed, timeout=20)
    finally:
        server.stop()
    directory = archive_disk.outside(archive_disk.mount / recording.key)
    assert verify(directory, recording.manifest_sha256) == []
    manifest = load_manifest(directory)
    assert any("stopped" in alarm["message"] for alarm in manifest["alarms"])
    for entry in manifest["files"]:
        if not entry["present"]:
            continue
        with av.open(str(directory / entry["name"])) as container:
            assert container.duration is not None and container.duration > 2e6, entry["name"]
            for packet in container.demux():
                packet.decode()
