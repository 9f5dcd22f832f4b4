"""A planned restart (SIGTERM, then start again) with four bots connected, as an operator does it
(issue 10.2): the stop does not hang (its 5 s is the server's own budget), every interval ends at the stop as "restart", and the bots,
which reconnect as the page does, are back by themselves after the start."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
from pathlib import Path

from sqlalchemy import select

from bots.bot import Bot, BotOptions
from bots.login import LoginTokenSource
from bots.media_files import PreEncodedMedia
from conftest import wait_for
from meetings.demo import DEMO_PASSWORD
from meetings.models import AttendanceInterval
from server_process import ServerProcess

MEETING = 1  # the demo's weekly session
SITES = (("chair", True), ("governor", True), ("secretariat", False), ("observer", False))


async def intervals(server: ServerProcess) -> list[AttendanceInterval]:
    services = server.services()
    try:
        async with services.db.read() as session:
            return list((await session.scalars(select(AttendanceInterval).where(
                AttendanceInterval.meeting_id == MEETING).order_by(AttendanceInterval.id))).all())
    finally:
        await services.db.dispose()


async def test_sigterm_with_four_bots_then_start_again(tmp_path: Path, media: PreEncodedMedia) -> None:
    server = ServerProcess(tmp_path / "data").start()
    bots = [Bot(BotOptions(url=server.url, name=name, publish=publish, lean=not publish,
                           token_source=LoginTokenSource(server.url, name, DEMO_PASSWORD, MEETING)), media)
            for name, publish in SITES]
    try:
        for bot in bots:
            await asyncio.wait_for(bot.start(), 20)

        async def all_written() -> bool:
            rows = await intervals(server)
            return len(rows) == len(SITES) and all(r.left_at is None for r in rows)

        deadline = time.monotonic() + 15
        while not await all_written():
            assert time.monotonic() < deadline, await intervals(server)
            await asyncio.sleep(0.2)

        assert server.proc is not None
        stopped_at = dt.datetime.now(dt.UTC)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.proc.wait, 30)
        took = time.monotonic() - started
        assert server.proc.returncode == 0, server.log_tail()
        # The 5 s the operator is promised is the server's own stop budget (signaling/server.py); this
        # bound only catches a stop that hangs: a loaded 2-core CI machine took 5.1 s once.
        assert took <= 10.0, f"the stop took {took:.1f} s"
        rows = await intervals(server)
        offsets = [round((r.left_at - stopped_at).total_seconds(), 2) for r in rows if r.left_at is not None]
        print(f"planned stop: exit after {took:.2f} s; intervals end {offsets} s from the signal")
        assert len(rows) == len(SITES)
        for row in rows:
            assert row.end_reason == "restart" and row.left_at is not None, (row.end_reason, row.left_at)
            assert abs((row.left_at - stopped_at).total_seconds()) < 2.0
        await wait_for(lambda: all(bot.state == "reconnecting" for bot in bots), timeout=5)

        await asyncio.to_thread(server.start)
        for bot in bots:
            await bot.wait_joined(timeout=20)
        for bot in bots:
            report = bot.report()
            assert report.reconnects == 1 and report.gave_up is None, (bot.options.name, report.errors)
            # each was told why before the connection closed: a restart, not a refusal
            assert "(restarting: " in (report.connections[0].end_reason or ""), report.connections[0]
        rows = await intervals(server)
        reopened = [r for r in rows if r.left_at is None]
        assert len(reopened) == len(SITES), rows
    finally:
        for bot in bots:
            await asyncio.wait_for(bot.stop(), 15)
        server.stop()
