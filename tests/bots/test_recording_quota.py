"""The archive's quota (issue 12): the moderators are warned before it is reached; when it is reached the
recording stops and is sealed, and the session goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bots.bot import Bot
from bots.media_files import PreEncodedMedia
from meetings.policy import Caller
from bot_fixtures import bots, small_media, start_publishing_bots  # noqa: F401 (fixtures)
from server_process import ServerProcess
from session_helpers import eventually, new_session, token_for

pytestmark = pytest.mark.timeout(150)
CLI = Caller.cli()


async def test_quota_warns_then_stops_the_recording_not_the_session(
        tmp_path: Path, small_media: PreEncodedMedia, bots: dict[str, Bot]) -> None:
    server = ServerProcess(tmp_path / "data", env={"CABINET_MEETINGS__RECORDING_QUOTA_BYTES": "1200000",
                                                    "CABINET_MEETINGS__RECORDING_QUOTA_WARN_PERCENT": "40"}).start()
    try:
        meeting_id = await new_session(server)  # type: ignore[arg-type]
        tokens = {name: await token_for(server, name, meeting_id) for name in ("chair", "governor")}  # type: ignore[arg-type]
        await start_publishing_bots(server.url, tokens, small_media, bots)
        chair = bots["chair"].client
        assert (await chair.call("session", {"action": "open"}))["ok"]
        alarms: list[str] = []

        async def recording(state: str, alarm: str) -> object:
            services = server.services()
            try:
                found = await services.recordings.list_for_meeting(CLI, meeting_id)
            finally:
                await services.db.dispose()
            assert len(found) == 1 and found[0].state.value == state and alarm in found[0].alarm, \
                (found[0].state, found[0].alarm)
            if found[0].alarm not in alarms:
                alarms.append(found[0].alarm)
            return found[0]

        await eventually(lambda: recording("recording", "of its quota"), timeout=60, interval=1)
        sealed = await eventually(lambda: recording("closed", "quota is reached"), timeout=60, interval=1)
        assert sealed.manifest_sha256  # type: ignore[attr-defined]
        # The session goes on.
        assert (await chair.call("floor", {"action": "grant",
                                           "participant_id": bots["governor"].client.participant_id}))["ok"]
        assert (await chair.call("session", {"action": "close"}))["ok"]
    finally:
        await asyncio.gather(*(asyncio.wait_for(bot.stop(), 20) for bot in bots.values()), return_exceptions=True)
        bots.clear()
        server.stop()
    assert "recording stops when it is full" in alarms[0]
