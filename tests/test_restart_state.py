"""The room after a crash: the floor grant, a force-mute and a removal survive kill -9 (issue 10.1)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select

from meetings.models import FloorGrant
from server_process import ServerProcess
from session_helpers import eventually, new_session, sig_join, token_for
from sigclient import SigClient


async def grant_of(server: ServerProcess, grant_id: int) -> FloorGrant:
    services = server.services()
    try:
        async with services.db.read() as session:
            row = (await session.scalars(select(FloorGrant).where(FloorGrant.id == grant_id))).one()
            return row
    finally:
        await services.db.dispose()


async def open_grant_id(server: ServerProcess, meeting_id: int) -> int:
    services = server.services()
    try:
        async with services.db.read() as session:
            return (await session.scalars(select(FloorGrant.id).where(
                FloorGrant.meeting_id == meeting_id, FloorGrant.ended_at.is_(None)))).one()
    finally:
        await services.db.dispose()


async def disconnect_all(clients: dict[str, SigClient]) -> None:
    for client in clients.values():
        if client.sio.connected:
            await client.sio.disconnect()
    clients.clear()


async def test_floor_mute_and_removal_survive_kill_9_and_an_absent_holder_loses_the_floor_when_last_seen(
        tmp_path: Path) -> None:
    """Before: after kill -9 the governor who held the floor was no longer heard, the muted governor could
    unmute, the removed observer joined again, and a grant interrupted by the crash ended at the restart."""
    server = ServerProcess(tmp_path).start()
    clients: dict[str, SigClient] = {}
    try:
        meeting_id = await new_session(server, grace_seconds=3)  # type: ignore[arg-type]
        chair, _ = await sig_join(server, clients, "chair", meeting_id)  # type: ignore[arg-type]
        governor, g = await sig_join(server, clients, "governor", meeting_id)  # type: ignore[arg-type]
        observer, o = await sig_join(server, clients, "observer", meeting_id)  # type: ignore[arg-type]
        governor_person = g["me"]["person_id"]
        assert (await chair.call("session", {"action": "open"}))["ok"]
        reply: Any = await chair.call("floor", {"action": "grant", "participant_id": g["participant_id"]})
        assert reply["ok"] and reply["floor"]["holder"]["person_id"] == governor_person, reply
        assert (await chair.call("moderate", {"action": "mute", "participant_id": g["participant_id"]}))["ok"]
        assert (await chair.call("moderate", {"action": "remove", "participant_id": o["participant_id"]}))["ok"]
        await observer.wait_for("removed")

        # 1. kill -9 and restart: everything is still in force once people are back.
        server.kill()
        await disconnect_all(clients)
        server.start()
        chair, c = await sig_join(server, clients, "chair", meeting_id)  # type: ignore[arg-type]
        assert c["floor"]["holder"] is not None and c["floor"]["holder"]["person_id"] == governor_person, c["floor"]
        governor, g = await sig_join(server, clients, "governor", meeting_id)  # type: ignore[arg-type]
        assert g["me"]["force_muted"] is True
        refused = await governor.call("mute", {"kind": "audio", "muted": False})
        assert refused["error"]["code"] == "force_muted", refused
        assert g["floor"]["holder"]["participant_id"] == g["participant_id"]  # the floor is theirs again
        observer = SigClient(server.url)
        clients["observer"] = observer
        await observer.connect(await token_for(server, "observer", meeting_id))  # type: ignore[arg-type]
        assert (await observer.call("join"))["error"]["code"] == "removed"

        # 2. kill -9 again; this time the holder does not come back within the grace window: the grant
        #    ends at their last evidence of life (before the crash), not at the restart.
        grant_id = await open_grant_id(server, meeting_id)
        killed_at = dt.datetime.now(dt.UTC)
        server.kill()
        await disconnect_all(clients)
        server.start()
        restarted_at = dt.datetime.now(dt.UTC)
        chair, c = await sig_join(server, clients, "chair", meeting_id)  # type: ignore[arg-type]
        assert c["floor"]["holder"]["person_id"] == governor_person and c["floor"]["holder"]["participant_id"] is None
        await chair.wait_for("floor", lambda f: f["holder"] is None and f.get("ended") == "left", timeout=15)

        async def ended() -> FloorGrant:  # the floor event goes out before the record is written
            grant = await grant_of(server, grant_id)
            assert grant.ended_at is not None and grant.end_reason == "left"
            return grant

        grant = await eventually(ended, timeout=10)
        assert grant.ended_at <= killed_at < restarted_at, (grant.ended_at, killed_at, restarted_at)
    finally:
        await disconnect_all(clients)
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
