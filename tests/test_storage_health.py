"""The attendance journal (replay is idempotent, bounded, survives a torn line) and the storage monitor
(problems appear and clear), without a real full disk (tests/test_disk_full.py has that)."""

from __future__ import annotations

import datetime as dt
import errno
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from harness import STRONG_SECRET
from meetings import db as database
from meetings import demo
from meetings.config import MeetingsConfig
from meetings.db import Database

from meetings.errors import DatabaseBusy, DiskFull
from meetings.models import AttendanceInterval
from meetings.models.base import utcnow
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.attendance import ConnectionRecord
from meetings.services.attendance_journal import AttendanceJournal, replay
from meetings.storage import StorageMonitor

CLI = Caller.cli()


@pytest.fixture
async def demo_services(tmp_path: Path) -> AsyncIterator[Services]:
    url = database.sqlite_url_for(tmp_path / "cabinet.db")
    database.upgrade(url)
    services = Services.build(Database(url), MeetingsConfig(), STRONG_SECRET)
    await demo.load(services)
    yield services
    await services.db.dispose()


async def _meeting_and_people(services: Services) -> tuple[int, int, int]:
    meeting = (await services.meetings.list_visible(CLI))[0]
    person = await services.people.find(CLI, "governor")
    return meeting.id, person.id, person.office_id


async def _rows(services: Services, meeting_id: int) -> list[AttendanceInterval]:
    async with services.db.read() as session:
        return list((await session.scalars(select(AttendanceInterval).where(
            AttendanceInterval.meeting_id == meeting_id).order_by(AttendanceInterval.id))).all())


async def test_journal_replay_adds_merges_and_never_duplicates(demo_services: Services, tmp_path: Path) -> None:
    services = demo_services
    meeting_id, person_id, office_id = await _meeting_and_people(services)
    journal = AttendanceJournal(tmp_path / "journal", reserved_bytes=64 * 1024)
    journal.open()
    assert journal.path.stat().st_size == 64 * 1024  # reserved: real blocks, written as zeros
    assert journal.path.stat().st_blocks * 512 >= 64 * 1024
    joined = utcnow() - dt.timedelta(minutes=5)
    fresh = ConnectionRecord(meeting_id, person_id, office_id, "room", joined)
    ended = ConnectionRecord(meeting_id, person_id, office_id, "console", joined + dt.timedelta(seconds=1))
    await services.attendance.sync([ended], heartbeat=False)  # written open; its end is what was refused
    ended.left_at, ended.end_reason = joined + dt.timedelta(minutes=2), "left"
    assert journal.failed(meeting_id, [fresh, ended]) == 3  # two states and one "seen"
    assert journal.failed(meeting_id, [fresh, ended]) == 1  # nothing changed: only "seen"
    with open(journal.path, "r+b") as handle:  # a crash tore the last line
        text = handle.read().split(b"\0", 1)[0]
        handle.seek(len(text))
        handle.write(b'{"key":"torn","meeting":')
    journal.close()

    again = AttendanceJournal(tmp_path / "journal", reserved_bytes=64 * 1024)
    again.open()
    counts = await replay(services.db, again)
    assert counts == {"added": 1, "merged": 1, "unchanged": 0}
    rows = await _rows(services, meeting_id)
    assert len(rows) == 2
    room = next(r for r in rows if r.client == "room")
    assert abs((room.joined_at - joined).total_seconds()) < 0.001 and room.left_at is None
    console = next(r for r in rows if r.client == "console")
    assert console.left_at == ended.left_at and console.end_reason == "left"
    assert again.read().records == {}  # emptied after the replay
    # Replaying the same lines again (a crash between the commit and the emptying) adds nothing.
    again.failed(meeting_id, [fresh, ended])
    assert (await replay(services.db, again))["added"] == 0
    assert len(await _rows(services, meeting_id)) == 2
    again.close()


async def test_journal_empties_once_everything_reached_the_database(demo_services: Services, tmp_path: Path) -> None:
    meeting_id, person_id, office_id = await _meeting_and_people(demo_services)
    journal = AttendanceJournal(tmp_path / "journal", reserved_bytes=8 * 1024)
    journal.open()
    record = ConnectionRecord(meeting_id, person_id, office_id, "room", utcnow())
    journal.failed(meeting_id, [record])
    assert journal.read().records
    await demo_services.attendance.sync([record], heartbeat=False)
    journal.written([record])
    assert journal.read().records == {} and journal.path.stat().st_size == 8 * 1024
    # Bounded: past its reservation it writes nothing more (and says so once).
    many = [ConnectionRecord(meeting_id, person_id, office_id, "room", utcnow()) for _ in range(200)]
    journal.failed(meeting_id, many)
    assert journal.path.stat().st_size == 8 * 1024
    journal.close()


def test_monitor_raises_and_clears_problems(tmp_path: Path) -> None:
    monitor = StorageMonitor([tmp_path], database_dir=tmp_path, low_space_bytes=0)
    seen: list[tuple[str, bool]] = []
    monitor.listeners.append(lambda problem, cleared: seen.append((problem.code, cleared)))
    assert monitor.problems() == []
    monitor.write_outcome(DiskFull("full"))
    monitor.write_outcome(DatabaseBusy("busy"))
    assert [p.code for p in monitor.problems()] == ["disk_full", "busy"]
    monitor.probe()  # this disk has room again: the failure of its database is over
    assert [p.code for p in monitor.problems()] == ["busy"]
    monitor.write_outcome(None)  # a write went through
    assert monitor.problems() == []
    assert seen == [("disk_full", False), ("busy", False), ("disk_full", True), ("busy", True)]
    monitor.low_space_bytes = 1 << 62  # "less free than this": full
    monitor.probe()
    assert [p.code for p in monitor.problems()] == ["disk_full"]


async def test_an_upload_on_a_full_disk_is_disk_full_not_internal(demo_services: Services, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    services = demo_services
    services.documents.directory = tmp_path / "documents"
    # a meeting with an agenda (which meeting lists first depends on the day and hour the demo is loaded)
    meeting = next(m for m in await services.meetings.list_visible(CLI) if m.agenda)
    item_id = meeting.agenda[0].id

    async def no_space(self: object, body: object) -> tuple[str, int]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("meetings.services.documents.DocumentService._store", no_space)
    with pytest.raises(DiskFull, match="the server's disk is full"):
        await services.documents.upload(CLI, item_id, filename="a.pdf", content_type="application/pdf",
                                        body=b"%PDF-1.4 x")
    assert [p.code for p in services.storage.problems()] == ["disk_full"]
