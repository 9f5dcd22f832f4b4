"""A planned stop (SIGTERM) of a real server process with people connected (issue 10.2)."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from meetings.models import AttendanceInterval
from server_process import ServerProcess
from session_helpers import eventually, new_session, sig_join
from sigclient import SigClient

PEOPLE = ("secretariat", "chair", "governor", "observer")


async def intervals(server: ServerProcess, meeting_id: int) -> list[AttendanceInterval]:
    services = server.services()
    try:
        async with services.db.read() as session:
            return list((await session.scalars(select(AttendanceInterval).where(
                AttendanceInterval.meeting_id == meeting_id))).all())
    finally:
        await services.db.dispose()


async def test_sigterm_with_four_sites_stops_within_5_s_tells_the_pages_and_ends_intervals_at_the_stop(
        tmp_path: Path) -> None:
    """Before: 40-45 s (aiohttp waited for the open sockets), and the intervals were closed as "dropped"
    when the ping timeout noticed, crediting the shutdown as presence."""
    server = ServerProcess(tmp_path).start()
    clients: dict[str, SigClient] = {}
    try:
        meeting_id = await new_session(server)  # type: ignore[arg-type]
        closing: dict[str, list[Any]] = {}
        for username in PEOPLE:
            client, joined = await sig_join(server, clients, username, meeting_id)  # type: ignore[arg-type]
            assert "participant_id" in joined, joined
            closing[username] = client.events["closing"]
            client.sio.on("closing", client._recorder("closing"))

        async def all_open() -> None:
            rows = await intervals(server, meeting_id)
            assert len(rows) == len(PEOPLE) and all(r.left_at is None for r in rows), rows

        await eventually(all_open)
        assert server.proc is not None
        stopped_at = dt.datetime.now(dt.UTC)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.proc.wait, 30)
        took = time.monotonic() - started
        assert server.proc.returncode == 0, server.log_tail()
        assert took <= 5.0, f"the stop took {took:.1f} s"
        for username in PEOPLE:
            assert [c.get("code") for c in closing[username]] == ["restarting"], (username, closing[username])
        rows = await intervals(server, meeting_id)
        assert len(rows) == len(PEOPLE)
        for row in rows:
            assert row.end_reason == "restart", (row.end_reason, row.left_at)
            assert row.left_at is not None and abs((row.left_at - stopped_at).total_seconds()) < 2.0
    finally:
        for client in clients.values():
            if client.sio.connected:
                await client.sio.disconnect()
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
