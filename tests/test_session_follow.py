"""The centre's record of a briefing a node runs (meetings/services/session.py and floor.py
``follow_host``): it follows the node's tables forward only, with the node's times, audited as the
node's; a stale or repeated table changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from meetings import demo
from meetings.models import AuditEvent, FloorGrant, Meeting, MeetingKind, MeetingState
from meetings.models.base import utcnow
from meetings.policy import Caller
from meetings.services import Services

NODE = Caller(principal=None, address="198.18.1.2", system=True)


async def briefing_and_people(services: Services) -> tuple[int, tuple[int, int], tuple[int, int]]:
    await demo.load(services)
    cli = Caller.cli()
    async with services.db.read() as session:
        briefing = int(await session.scalar(select(Meeting.id).where(Meeting.kind == MeetingKind.BRIEFING)))
    commander = await services.people.find(cli, "commander")
    governor = await services.people.find(cli, "governor")
    return briefing, (commander.id, commander.office_id), (governor.id, governor.office_id)


async def record(services: Services, meeting_id: int) -> tuple[Meeting, list[FloorGrant], list[tuple[str, dict]]]:  # type: ignore[type-arg]
    async with services.db.read() as session:
        meeting = await session.get(Meeting, meeting_id)
        grants = list((await session.execute(select(FloorGrant).where(FloorGrant.meeting_id == meeting_id)
                                             .order_by(FloorGrant.id))).scalars())
        events = [(e.action, json.loads(e.details)) for e in (await session.execute(
            select(AuditEvent).where(AuditEvent.target_id == str(meeting_id)).order_by(AuditEvent.seq))).scalars()]
    assert meeting is not None
    return meeting, grants, events


def test_a_session_never_goes_back() -> None:
    s, o, c, x = MeetingState.SCHEDULED, MeetingState.OPEN, MeetingState.CLOSED, MeetingState.CANCELLED
    assert s.is_behind(o) and s.is_behind(c) and o.is_behind(c)
    assert not any(a.is_behind(b) for a, b in ((o, s), (c, o), (c, s), (o, o), (x, s), (s, x), (c, x)))


async def test_the_record_follows_the_node_s_session_forward_only(services: Services) -> None:
    briefing, _, _ = await briefing_and_people(services)
    opened = utcnow() - dt.timedelta(minutes=5)
    follow = services.session.follow_host
    assert not await follow(NODE, briefing, MeetingState.SCHEDULED, None, None, node_id=3), "nothing to follow"
    assert await follow(NODE, briefing, MeetingState.OPEN, opened, None, node_id=3)
    assert not await follow(NODE, briefing, MeetingState.OPEN, utcnow(), None, node_id=3), "the same table again"
    meeting, _, events = await record(services, briefing)
    assert meeting.state is MeetingState.OPEN and meeting.opened_at == opened
    [(action, details)] = [e for e in events if e[0].startswith("session.")]
    assert action == "session.open" and details["via"] == "node" and details["node_id"] == 3

    # A close whose time is in the future (the node's clock) is taken as now, never before the opening.
    assert await follow(NODE, briefing, MeetingState.CLOSED, opened, utcnow() + dt.timedelta(hours=1), node_id=3)
    for stale in (MeetingState.SCHEDULED, MeetingState.OPEN):
        assert not await follow(NODE, briefing, stale, opened, None, node_id=3), f"never back to {stale}"
    meeting, _, events = await record(services, briefing)
    assert meeting.state is MeetingState.CLOSED and meeting.closed_at is not None
    assert opened < meeting.closed_at <= utcnow()
    assert [a for a, _ in events if a.startswith("session.")] == ["session.open", "session.close"]


async def test_the_record_follows_the_node_s_floor_holder(services: Services) -> None:
    briefing, commander, governor = await briefing_and_people(services)
    await services.session.follow_host(NODE, briefing, MeetingState.OPEN, None, None, node_id=3)
    granted = utcnow() - dt.timedelta(seconds=30)
    follow = services.floor.follow_host
    assert not await follow(NODE, briefing, None, node_id=3), "nobody had it, nobody has it"
    assert await follow(NODE, briefing, (commander[0], commander[1], granted, 120), node_id=3)
    assert not await follow(NODE, briefing, (commander[0], commander[1], granted, 120), node_id=3), "the same holder"
    assert await follow(NODE, briefing, (governor[0], governor[1], utcnow(), None), node_id=3)
    assert await follow(NODE, briefing, None, node_id=3)
    _, grants, events = await record(services, briefing)
    assert [(g.person_id, g.end_reason, g.limit_seconds) for g in grants] == [
        (commander[0], "host", 120), (governor[0], "host", None)]
    assert grants[0].granted_at == granted and grants[0].granted_by_id is None
    assert all(g.ended_at is not None and g.ended_at >= g.granted_at for g in grants)
    floor_events = [(a, d["person_id"], d["via"]) for a, d in events if a.startswith("floor.")]
    assert floor_events == [("floor.grant", commander[0], "node"), ("floor.host", commander[0], "node"),
                            ("floor.grant", governor[0], "node"), ("floor.host", governor[0], "node")]
