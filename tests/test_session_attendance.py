"""Attendance from real bot connections (join, drop, rejoin inside and outside the grace window, leave),
crash recovery at start-up, the live quorum, and excused absences."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bots.bot import Bot, BotOptions
from harness import LiveServer, make_config
from meetings.models import AttendanceInterval
from meetings.services.attendance import ConnectionRecord
from session_helpers import CLI, eventually, new_session, sig_join, token_for, with_services
from sigclient import SigClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(make_config(tmp_path_factory.mktemp("att"), **{"media.ice_bind_addresses": ["127.0.0.1"]}))
    yield live.start()
    live.stop()


@pytest.fixture
async def people() -> AsyncIterator[dict[str, SigClient]]:
    made: dict[str, SigClient] = {}
    yield made
    for c in made.values():
        await c.close()


async def bot(server: LiveServer, username: str, meeting_id: int) -> Bot:
    b = Bot(BotOptions(url=server.url, token=await token_for(server, username, meeting_id), name=username,
                       publish=False, lean=True))
    await b.start()
    return b


async def drop(b: Bot) -> None:
    """The connection goes away without a leave (as when a provincial link fails)."""
    await b.client.disconnect()
    if b.subscriber is not None:
        await b.subscriber.close()


async def rows(server: LiveServer, meeting_id: int, person_id: int) -> list[AttendanceInterval]:
    async def read(services):  # type: ignore[no-untyped-def]
        async with services.db.read() as session:
            return list((await session.scalars(select(AttendanceInterval).where(
                AttendanceInterval.meeting_id == meeting_id, AttendanceInterval.person_id == person_id)
                .order_by(AttendanceInterval.id))).all())
    return await with_services(server, read)  # type: ignore[no-any-return]


async def person_register(server: LiveServer, meeting_id: int, person_id: int) -> dict:
    register = await with_services(server, lambda s: s.attendance.register(CLI, meeting_id))
    return next(p for p in register["people"] if p["person_id"] == person_id)


async def test_attendance_from_bot_connections_with_grace(server: LiveServer) -> None:
    # A grace window a rejoin fits in even on a loaded machine (a bot rejoins in 0.5-3 s).
    meeting_id = await new_session(server, grace_seconds=8)
    governor = await bot(server, "governor", meeting_id)
    person_id = governor.client.joined["me"]["person_id"]  # type: ignore[index]
    await asyncio.sleep(0.5)
    # Drop and come back inside the grace window: still one interval in the register.
    await drop(governor)
    await asyncio.sleep(0.5)
    governor = await bot(server, "governor", meeting_id)

    async def one_interval() -> None:
        assert len(await rows(server, meeting_id, person_id)) == 2
        entry = await person_register(server, meeting_id, person_id)
        assert len(entry["intervals"]) == 1 and entry["present_now"], entry

    await eventually(one_interval, timeout=10)
    # Drop and stay away longer than the grace window: two intervals.
    await drop(governor)
    await asyncio.sleep(9)
    absent = await person_register(server, meeting_id, person_id)
    assert not absent["present_now"]
    governor = await bot(server, "governor", meeting_id)

    async def two_intervals() -> None:
        entry = await person_register(server, meeting_id, person_id)
        assert len(entry["intervals"]) == 2 and entry["present_now"], entry

    await eventually(two_intervals, timeout=10)
    # Leave: every interval is closed, with how it ended.
    await governor.stop()

    async def closed() -> None:
        recorded = await rows(server, meeting_id, person_id)
        assert [r.end_reason for r in recorded] == ["dropped", "dropped", "left"]
        assert all(r.left_at is not None and r.left_at >= r.joined_at for r in recorded)
        assert all(r.client == "room" for r in recorded)

    await eventually(closed, timeout=10)


async def test_quorum_is_pushed_and_close_ends_attendance(server: LiveServer, people: dict[str, SigClient]) -> None:
    meeting_id = await new_session(server, quorum_percent=1)
    chair, c = await sig_join(server, people, "chair", meeting_id)
    governor, g = await sig_join(server, people, "governor", meeting_id)
    assert c["session"]["state"] == "scheduled" and g["floor"]["holder"] is None
    quorum = await governor.wait_for("quorum", lambda q: q["quorum"]["present"] >= 2)
    assert quorum["quorum"]["required"] >= 1 and quorum["quorum"]["met"] is True
    register = await chair.wait_for("register", lambda r: len(r["people"]) >= 2)
    assert {s["code"] for s in register["sites"] if s["present_now"]} >= {"OCM", "KH-17"}
    assert (await governor.call("register"))["error"]["code"] == "forbidden"
    assert (await chair.call("register"))["register"]["quorum"]["present"] >= 2
    # Excused absences are the secretariat's record (the chair may not), audited.
    kratie = next(s for s in register["sites"] if s["code"] == "KH-10")
    refused = await chair.call("excuse", {"office_id": kratie["office_id"], "reason": "Flooded roads"})
    assert refused["error"]["code"] == "forbidden"
    secretariat, _ = await sig_join(server, people, "secretariat", meeting_id)
    assert (await secretariat.call("excuse", {"reason": "x"}))["error"]["code"] == "invalid"
    assert (await secretariat.call("excuse", {"office_id": kratie["office_id"], "reason": "Flooded roads"}))["ok"]
    after = await secretariat.call("register")
    assert next(s for s in after["register"]["sites"] if s["code"] == "KH-10")["excused"] == "Flooded roads"
    # Open, then close: open intervals end with the session.
    assert (await governor.call("session", {"action": "open"}))["error"]["code"] == "forbidden"
    assert (await chair.call("session", {"action": "open"}))["ok"]
    await governor.wait_for("session", lambda s: s["state"] == "open")
    assert (await chair.call("session", {"action": "open"}))["error"]["code"] == "forbidden"  # already open
    assert (await chair.call("session", {"action": "close"}))["ok"]
    await governor.wait_for("session", lambda s: s["state"] == "closed")
    person_id = g["me"]["person_id"]

    async def closed() -> None:
        recorded = await rows(server, meeting_id, person_id)
        assert recorded and all(r.end_reason == "closed" for r in recorded)

    await eventually(closed, timeout=10)
    actions = [e.action for e in await with_services(server, lambda s: s.audit.recent(CLI, limit=100))]
    for action in ("session.open", "session.close", "attendance.excuse"):
        assert action in actions


async def test_a_crash_leaves_no_open_interval(tmp_path: Path) -> None:
    config = make_config(tmp_path, **{"media.ice_bind_addresses": ["127.0.0.1"]})
    first = LiveServer(config).start()
    try:
        meeting_id = await new_session(first)
        person = await with_services(first, lambda s: s.people.find(CLI, "governor"))
        last_seen = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        record = ConnectionRecord(meeting_id, person.id, person.office_id, "room", last_seen - dt.timedelta(minutes=30))
        await with_services(first, lambda s: s.attendance.sync([record], now=last_seen))
    finally:
        first.stop()  # as if the process died: the interval is still open
    assert record.interval_id is not None
    again = LiveServer(config).start()
    try:
        recorded = await rows(again, meeting_id, person.id)
        assert len(recorded) == 1
        assert recorded[0].end_reason == "crashed"
        assert abs((recorded[0].left_at - last_seen).total_seconds()) < 1  # type: ignore[operator]
    finally:
        again.stop()
