"""Before the session, on SQLite and PostgreSQL: series and occurrences, notices, iCalendar, documents,
positions in advance and adoption en bloc."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import icalendar
import pytest
from sqlalchemy import select

from meetings import demo
from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meetings.models import AgendaDocument, AuditEvent, Decision, MeetingState, Notice, Stance
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.common import principal_of

CLI = Caller.cli()
SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG"
NOW = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)  # a Sunday; the demo's first session is Fri 27 Nov
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
async def svc(migrated_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    services = Services.build(Database(migrated_url), MeetingsConfig(document_max_bytes=4096), SECRET,
                              tmp_path / "data")
    await demo.load(services, now=NOW)
    yield services
    await services.db.dispose()


async def as_(svc: Services, username: str) -> Caller:
    return Caller(principal_of(await svc.people.find(CLI, username)), "127.0.0.1")


async def offices(svc: Services) -> dict[str, int]:
    return {o.code: o.id for o in await svc.offices.list(CLI)}


async def test_demo_series_has_twelve_weekly_occurrences_and_meeting_1_first(svc: Services) -> None:
    series = (await svc.schedule.list_series(CLI))[0]
    occ = await svc.schedule.occurrences(CLI, series.id)
    assert occ[0].id == 1 and len(occ[0].agenda) == 4 and len(occ) == 12
    assert occ[0].starts_at == dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)
    assert [m.occurrence_date for m in occ][-1] == dt.date(2027, 2, 12)  # across months and the new year
    assert all(m.invitations and {i.office_id for i in m.invitations} == {i.office_id for i in occ[0].invitations}
               for m in occ)
    again = await svc.schedule.generate(CLI, series.id, now=NOW)
    assert again == []  # idempotent
    more = await svc.schedule.generate(CLI, series.id, weeks=14, now=NOW)
    assert [m.occurrence_date for m in more] == [dt.date(2027, 2, 19), dt.date(2027, 2, 26)]


async def test_move_and_cancel_one_occurrence_leave_the_others(svc: Services) -> None:
    secretariat = await as_(svc, "secretariat")
    series = (await svc.schedule.list_series(secretariat))[0]
    first, second, third = (await svc.schedule.occurrences(secretariat, series.id))[:3]
    new_start = second.starts_at + dt.timedelta(hours=2)
    moved = await svc.schedule.move(secretariat, second.id, starts_at=new_start.isoformat(),
                                    ends_at=(new_start + dt.timedelta(hours=3)).isoformat())
    assert moved.starts_at == new_start and moved.sequence == 1 and moved.occurrence_date == second.occurrence_date
    cancelled = await svc.schedule.cancel(secretariat, third.id, reason="National holiday")
    assert cancelled.state is MeetingState.CANCELLED and cancelled.sequence == 1
    after = {m.id: m for m in await svc.schedule.occurrences(secretariat, series.id)}
    assert after[first.id].starts_at == first.starts_at and after[first.id].sequence == 0
    assert after[first.id].state is MeetingState.SCHEDULED and len(after) == 12
    # Regenerating neither duplicates the moved one nor resurrects the cancelled one.
    assert await svc.schedule.generate(secretariat, series.id, now=NOW) == []
    with pytest.raises(Conflict):
        await svc.schedule.cancel(secretariat, third.id)
    # Every invitee hears of it: the governor (Siem Reap is invited) has two notices.
    governor = await as_(svc, "governor")
    notices = await svc.notices.list(governor)
    assert {n.kind for n in notices} == {"moved", "cancelled"} and await svc.notices.unread_count(governor) == 2
    assert "National holiday" in next(n.text for n in notices if n.kind == "cancelled")
    assert await svc.notices.mark_read(governor, notices[0].id) == 1
    assert await svc.notices.unread_count(governor) == 1
    with pytest.raises(NotFound):  # another person's notice does not exist for you
        await svc.notices.mark_read(await as_(svc, "observer"), notices[0].id)
    commander = await as_(svc, "commander")
    assert await svc.notices.list(commander) == []  # not invited, hears nothing
    # Refused for those who may not manage it, and bad input changes nothing.
    for who in ("governor", "chair"):
        with pytest.raises(PermissionDenied):
            await svc.schedule.cancel(await as_(svc, who), first.id)
    with pytest.raises(NotFound):
        await svc.schedule.move(commander, first.id, starts_at=new_start.isoformat(), ends_at=new_start.isoformat())
    with pytest.raises(ValidationFailed):
        await svc.schedule.move(secretariat, first.id, starts_at="tomorrow", ends_at="later")
    assert (await svc.meetings.get(CLI, first.id)).sequence == 0


async def test_commander_series_of_briefings_and_end_of_series(svc: Services) -> None:
    ids = await offices(svc)
    commander = await as_(svc, "commander")
    with pytest.raises(PermissionDenied):
        await svc.schedule.create_series(await as_(svc, "governor"), title="X", kind="briefing",
                                         host_office_id=ids["KH-17"], weekday=0, local_time="09:00",
                                         duration_minutes=60, starts_on="2026-12-01", now=NOW)
    with pytest.raises(PermissionDenied):
        await svc.schedule.create_series(commander, title="X", kind="briefing", host_office_id=ids["MR-1"],
                                         weekday=0, local_time="09:00", duration_minutes=60,
                                         starts_on="2026-12-01", now=NOW)
    with pytest.raises(ValidationFailed):
        await svc.schedule.create_series(commander, title="X", kind="briefing", host_office_id=ids["MR-4"],
                                         weekday=0, local_time="25:00", duration_minutes=60,
                                         starts_on="2026-12-01", now=NOW)
    series = await svc.schedule.create_series(
        commander, title="Border briefing", kind="briefing", host_office_id=ids["MR-4"], weekday=0,
        local_time="09:00", duration_minutes=60, starts_on="2026-12-01", until="2026-12-31",
        invited_office_ids=[ids["RCAF-HC"]], now=NOW)
    occ = await svc.schedule.occurrences(commander, series.id)
    assert [m.occurrence_date.day for m in occ] == [7, 14, 21, 28]
    governor = await as_(svc, "governor")
    with pytest.raises(NotFound):
        await svc.schedule.get_series(governor, series.id)
    assert series.id not in {s.id for s in await svc.schedule.list_series(await as_(svc, "secretariat"))}
    ended = await svc.schedule.end_series(commander, series.id, last_date="2026-12-14", now=NOW)
    assert not ended.active and ended.until == dt.date(2026, 12, 14)
    states = [m.state for m in await svc.schedule.occurrences(commander, series.id)]
    assert states == [MeetingState.SCHEDULED] * 2 + [MeetingState.CANCELLED] * 2


async def test_ics_and_feed_show_only_visible_meetings(svc: Services) -> None:
    secretariat = await as_(svc, "secretariat")
    governor = await as_(svc, "governor")
    await svc.schedule.cancel(secretariat, 3)
    name, body = await svc.calendar.meeting_ics(governor, 1)
    cal = icalendar.Calendar.from_ical(body)
    assert b"\r\n" in body and b"BEGIN:VTIMEZONE" in body
    (event,) = cal.walk("VEVENT")
    assert str(event["uid"]) == "meeting-1@cabinet.meetings" and int(event["sequence"]) == 0
    assert event.decoded("dtstart") == dt.datetime(2026, 11, 27, 8, 0, tzinfo=event.decoded("dtstart").tzinfo)
    assert event["dtstart"].params["TZID"] == "Asia/Phnom_Penh"
    assert event.decoded("dtstart").astimezone(dt.UTC) == dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)
    assert "Draft sub-decree on provincial flood preparedness" in str(event["description"])
    token = await svc.calendar.rotate(governor)
    feed = icalendar.Calendar.from_ical(await svc.calendar.feed(token))
    events = {str(e["uid"]): e for e in feed.walk("VEVENT")}
    assert len(events) == 12 and "meeting-3@cabinet.meetings" in events
    assert str(events["meeting-3@cabinet.meetings"]["status"]) == "CANCELLED"
    assert int(events["meeting-3@cabinet.meetings"]["sequence"]) == 1
    briefing = next(m for m in await svc.meetings.list_visible(CLI) if m.kind.value == "briefing")
    assert f"meeting-{briefing.id}@cabinet.meetings" not in events
    commander = await as_(svc, "commander")
    commander_feed = icalendar.Calendar.from_ical(await svc.calendar.feed(await svc.calendar.rotate(commander)))
    assert {str(e["uid"]) for e in commander_feed.walk("VEVENT")} == {f"meeting-{briefing.id}@cabinet.meetings"}
    with pytest.raises(NotFound):
        await svc.calendar.meeting_ics(governor, briefing.id)
    # Rotating revokes the old address; only the hash is stored; the audit never holds the token.
    new_token = await svc.calendar.rotate(governor)
    with pytest.raises(NotFound):
        await svc.calendar.feed(token)
    assert await svc.calendar.feed(new_token)
    current = await svc.calendar.current(governor)
    assert current is not None and current.token_sha256 == hashlib.sha256(new_token.encode()).hexdigest()
    async with svc.db.read() as session:
        events_log = (await session.execute(select(AuditEvent).where(AuditEvent.action.like("calendar.feed.%"))))
        details = " ".join(str(e.details) for e in events_log.scalars())
    assert new_token not in details and token not in details
    await svc.calendar.revoke(governor)
    with pytest.raises(NotFound):
        await svc.calendar.feed(new_token)


async def test_pdf_documents(svc: Services) -> None:
    secretariat = await as_(svc, "secretariat")
    item = (await svc.meetings.get(CLI, 1)).agenda[1]
    doc = await svc.documents.upload(secretariat, item.id, filename="../../etc/Sub-decree.pdf",
                                     content_type="application/pdf", body=PDF)
    assert doc.sha256 == hashlib.sha256(PDF).hexdigest() and doc.size_bytes == len(PDF)
    assert doc.filename == "Sub-decree.pdf"
    got, path = await svc.documents.get(await as_(svc, "governor"), doc.id)
    assert path.read_bytes() == PDF and hashlib.sha256(path.read_bytes()).hexdigest() == got.sha256
    assert path.stat().st_mode & 0o777 == 0o600
    for bad, ctype in ((b"GIF89a not a pdf", "application/pdf"), (PDF, "text/plain"), (b"", "application/pdf"),
                       (PDF + b"x" * 5000, "application/pdf")):
        with pytest.raises(ValidationFailed):
            await svc.documents.upload(secretariat, item.id, filename="x.pdf", content_type=ctype, body=bad)
    with pytest.raises(PermissionDenied):
        await svc.documents.upload(await as_(svc, "governor"), item.id, filename="x.pdf",
                                   content_type="application/pdf", body=PDF)
    with pytest.raises(NotFound):
        await svc.documents.get(await as_(svc, "commander"), doc.id)
    async with svc.db.read() as session:
        assert len((await session.execute(select(AgendaDocument))).scalars().all()) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left behind
    await svc.documents.delete(secretariat, doc.id)
    assert not path.exists()


async def test_positions_deadline_tally_and_adoption_en_bloc(svc: Services) -> None:
    ids = await offices(svc)
    secretariat, governor, chair = [await as_(svc, u) for u in ("secretariat", "governor", "chair")]
    meeting = await svc.meetings.get(CLI, 1)
    items = meeting.agenda
    # A second invited office: a delegate of the Ministry of Economy and Finance.
    await svc.people.create(CLI, username="mef.delegate", full_name="MEF delegate", office_id=ids["MEF"],
                            roles=["delegate"], password="a-long-password-9")
    mef = await as_(svc, "mef.delegate")
    early = NOW
    await svc.positions.submit(governor, 1, items[0].id, stance="no_objection", now=early)
    await svc.positions.submit(governor, 1, items[1].id, stance="objection", comment="Costs unclear", now=early)
    await svc.positions.submit(mef, 1, items[2].id, stance="wish_to_speak", now=early)
    await svc.positions.submit(mef, 1, items[0].id, stance="objection", now=early)
    await svc.positions.submit(mef, 1, items[0].id, stance="no_objection", now=early)  # changed its mind
    for who in ("observer", "commander", "chair", "secretariat"):
        with pytest.raises((PermissionDenied, NotFound)):
            await svc.positions.submit(await as_(svc, who), 1, items[0].id, stance="no_objection", now=early)
    with pytest.raises(ValidationFailed):
        await svc.positions.submit(governor, 1, items[0].id, stance="maybe", now=early)
    # The deadline: set by the secretariat, enforced.
    deadline = meeting.starts_at - dt.timedelta(days=1)
    with pytest.raises(PermissionDenied):
        await svc.positions.set_deadline(governor, 1, deadline.isoformat())
    with pytest.raises(ValidationFailed):
        await svc.positions.set_deadline(secretariat, 1, (meeting.starts_at + dt.timedelta(hours=1)).isoformat())
    await svc.positions.set_deadline(secretariat, 1, deadline.isoformat())
    with pytest.raises(Conflict):
        await svc.positions.submit(governor, 1, items[3].id, stance="objection", now=deadline)
    # The tally: for the chair and the secretariat only.
    with pytest.raises(PermissionDenied):
        await svc.positions.tally(governor, 1)
    tally = await svc.positions.tally(chair, 1)
    assert tally[0].counts["no_objection"] == 2 and tally[0].unopposed
    assert [o.code for o in tally[1].offices[Stance.OBJECTION]] == ["KH-17"]
    assert tally[1].comments[0][2] == "Costs unclear" and not tally[1].unopposed
    assert not tally[2].unopposed and tally[3].unopposed
    assert len(tally[3].missing) == len([i for i in meeting.invitations if i.office_id])
    # Adoption en bloc: exactly the unopposed items, one audit event; not twice.
    with pytest.raises(PermissionDenied):
        await svc.positions.adopt_en_bloc(governor, 1)
    decisions = await svc.positions.adopt_en_bloc(chair, 1)
    assert sorted(d.item_id for d in decisions) == [items[0].id, items[3].id]
    assert all(d.en_bloc and d.outcome.value == "adopted" for d in decisions)
    with pytest.raises(Conflict):
        await svc.positions.adopt_en_bloc(secretariat, 1)
    async with svc.db.read() as session:
        assert len((await session.execute(select(Decision))).scalars().all()) == 2
        audit = (await session.execute(select(AuditEvent).where(
            AuditEvent.action == "decision.adopt_en_bloc"))).scalars().all()
        assert len(audit) == 1 and sorted(json.loads(audit[0].details)["item_ids"]) == [items[0].id, items[3].id]


async def test_agenda_change_is_announced(svc: Services) -> None:
    secretariat = await as_(svc, "secretariat")
    await svc.agenda.add(secretariat, 2, title="Urgent: dengue response", planned_minutes=10)
    async with svc.db.read() as session:
        kinds = (await session.execute(select(Notice.kind).where(Notice.meeting_id == 2))).scalars().all()
    assert kinds and set(kinds) == {"agenda"}
