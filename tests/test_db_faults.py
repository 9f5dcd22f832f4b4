"""Faults of the machine under the database: another process holding the write lock (issue 10.8)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from harness import STRONG_SECRET
from meetings import db as database
from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.errors import DatabaseBusy
from meetings.policy import Caller
from meetings.services import Services

CLI = Caller.cli()


def hold_write_lock(path: Path, seconds: float) -> threading.Event:
    """Another process's writer (a backup, a maintenance script): BEGIN IMMEDIATE, then sit on it."""
    held = threading.Event()

    def run() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=1)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    threading.Thread(target=run, daemon=True).start()
    assert held.wait(5)
    return held


async def build(tmp_path: Path, busy_seconds: float) -> Services:
    url = database.sqlite_url_for(tmp_path / "cabinet.db")
    database.upgrade(url)
    return Services.build(Database(url, busy_seconds=busy_seconds), MeetingsConfig(), STRONG_SECRET)


async def test_a_20_second_lock_delays_a_change_but_does_not_fail_it(tmp_path: Path) -> None:
    """Before: the 10 s busy timeout ran out and the action failed as "internal error"."""
    services = await build(tmp_path, busy_seconds=30)
    try:
        hold_write_lock(tmp_path / "cabinet.db", 20)
        started = time.monotonic()
        office = await services.offices.create(CLI, code="LCK", kind="ministry", name_en="Locked", name_km="ក")
        waited = time.monotonic() - started
        assert 19 <= waited < 30 and office.id
        assert [o.code for o in await services.offices.list(CLI) if o.code == "LCK"] == ["LCK"]
        assert (await services.audit.verify(CLI)).ok
    finally:
        await services.db.dispose()


async def test_a_lock_longer_than_the_bound_is_answered_busy_and_writes_nothing(tmp_path: Path) -> None:
    services = await build(tmp_path, busy_seconds=2)
    try:
        hold_write_lock(tmp_path / "cabinet.db", 4)
        started = time.monotonic()
        with pytest.raises(DatabaseBusy, match="the database is busy; try again"):
            await services.offices.create(CLI, code="BSY", kind="ministry", name_en="Busy", name_km="ក")
        assert 1.5 <= time.monotonic() - started < 4
        await asyncio.sleep(3)  # the other writer lets go
        assert not [o for o in await services.offices.list(CLI) if o.code == "BSY"]
        assert (await services.audit.verify(CLI)).checked == 0
        await services.offices.create(CLI, code="BSY", kind="ministry", name_en="Busy", name_km="ក")
    finally:
        await services.db.dispose()
