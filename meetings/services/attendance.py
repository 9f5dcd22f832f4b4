"""Attendance records from real connection events, excused absences, and the register.

Signaling reports connections as they open and close; ``sync`` writes a batch of them in one
transaction (new intervals, ended ones, and the heartbeat of those still open), so a caller that
fails to write keeps its batch and retries on the next heartbeat: attendance is never dropped.
At start-up, intervals a crash left open are closed at their last heartbeat (``recover_crashed``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.attendance import Presence
from meetings.db import Database
from meetings.errors import ValidationFailed
from meetings.models import AttendanceInterval, ExcusedAbsence, FloorGrant, Meeting, MeetingState, Office, Person
from meetings.models.base import utcnow
from meetings.policy import Action, Caller, require
from meetings.services.common import clean_text, meeting_access, record, record_access
from meetings.services.meetings import MeetingService
from meetings.services.register import LiveRegister, load_register

END_REASONS = frozenset({"left", "dropped", "removed", "closed", "crashed", "restart"})


@dataclass
class ConnectionRecord:
    """One connection as signaling saw it; ``interval_id`` is None until it has been written."""

    meeting_id: int
    person_id: int
    office_id: int
    client: str
    joined_at: dt.datetime
    left_at: dt.datetime | None = None
    end_reason: str = ""
    interval_id: int | None = None
    #: The end has been written.
    closed_written: bool = False
    #: While open: the last evidence of life, written by the heartbeat as ``last_seen_at`` (None: now).
    last_seen_at: dt.datetime | None = None

    @property
    def pending(self) -> bool:
        return self.interval_id is None or (self.left_at is not None and not self.closed_written)


class AttendanceService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def sync(self, records: Sequence[ConnectionRecord], *, heartbeat: bool = True,
                   now: dt.datetime | None = None) -> None:
        """Write what is pending in ``records`` and (``heartbeat``) refresh ``last_seen_at`` of the open
        ones, in one transaction. Records are updated in place only after the commit."""
        now = now or utcnow()
        created: list[tuple[ConnectionRecord, AttendanceInterval, bool]] = []
        closed: list[ConnectionRecord] = []
        async with self.db.write() as uow:
            s = uow.session
            for rec in records:
                if rec.left_at is not None and rec.end_reason not in END_REASONS:
                    raise ValueError(f"unknown end reason {rec.end_reason!r}")
                if rec.interval_id is None:
                    row = AttendanceInterval(meeting_id=rec.meeting_id, person_id=rec.person_id,
                                             office_id=rec.office_id, client=rec.client, joined_at=rec.joined_at,
                                             last_seen_at=rec.left_at or now, left_at=rec.left_at,
                                             end_reason=rec.end_reason)
                    s.add(row)
                    created.append((rec, row, rec.left_at is not None))
                elif rec.left_at is not None and not rec.closed_written:
                    await s.execute(update(AttendanceInterval)
                                    .where(AttendanceInterval.id == rec.interval_id,
                                           AttendanceInterval.left_at.is_(None))
                                    .values(left_at=rec.left_at, last_seen_at=rec.left_at, end_reason=rec.end_reason))
                    closed.append(rec)
            await s.flush()
            open_ids = [r.interval_id for r in records if r.interval_id is not None and r.left_at is None]
            if heartbeat and open_ids:
                # one statement: each interval's own last evidence of life where the caller knows it
                seen_type = AttendanceInterval.last_seen_at.type
                seen = {r.interval_id: literal(r.last_seen_at, seen_type) for r in records
                        if r.interval_id is not None and r.left_at is None and r.last_seen_at is not None}
                value = case(seen, value=AttendanceInterval.id, else_=literal(now, seen_type)) if seen else now
                await s.execute(update(AttendanceInterval).where(AttendanceInterval.id.in_(open_ids),
                                                                 AttendanceInterval.left_at.is_(None))
                                .values(last_seen_at=value))
        for rec, row, ended in created:  # the record may have ended while this transaction ran
            rec.interval_id = row.id
            rec.closed_written = ended
        for rec in closed:
            rec.closed_written = True

    async def recover_crashed(self) -> int:
        """Close intervals (and floor grants) left open by a crash at their last heartbeat. Run at start-up,
        before any connection is accepted. Returns how many intervals were closed."""
        async with self.db.write() as uow:
            s = uow.session
            done = await s.execute(update(AttendanceInterval).where(AttendanceInterval.left_at.is_(None))
                                   .values(left_at=AttendanceInterval.last_seen_at, end_reason="crashed"))
            count = int(done.rowcount or 0)  # type: ignore[attr-defined]
            # A grant in a session still open is restored by its room (signaling/floor.py), which ends it
            # at the holder's last evidence of life if they do not come back; any other ends at it now.
            grants = (await s.scalars(select(FloorGrant).join(Meeting, Meeting.id == FloorGrant.meeting_id).where(
                FloorGrant.ended_at.is_(None), Meeting.state != MeetingState.OPEN))).all()
            for grant in grants:
                last = await last_evidence(s, grant.meeting_id, grant.person_id)
                grant.ended_at, grant.end_reason = max(last or grant.granted_at, grant.granted_at), "crashed"
            if count or grants:
                uow.audit("attendance.recovered", actor_id=None, actor_office_id=None, address="server",
                          details={"intervals": count, "floor_grants": len(grants)})
        return count

    async def last_evidence(self, meeting_id: int, person_id: int) -> dt.datetime | None:
        """When a person was last known to be connected to a meeting (end or last refresh of an interval)."""
        async with self.db.read() as session:
            return await last_evidence(session, meeting_id, person_id)

    # -- excused absences -------------------------------------------------------------------
    async def excuse(self, caller: Caller, meeting_id: int, *, office_id: int | None = None,
                     person_id: int | None = None, reason: object) -> ExcusedAbsence:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.EXCUSE_ABSENCE, meeting_access(meeting))
        if (office_id is None) == (person_id is None):
            raise ValidationFailed("excuse either an office or a person", field="office_id")
        text = clean_text(reason, "reason", max_length=500)
        async with self.db.write() as uow:
            s = uow.session
            if office_id is not None and await s.get(Office, office_id) is None:
                raise ValidationFailed("no such office", field="office_id")
            if person_id is not None and await s.get(Person, person_id) is None:
                raise ValidationFailed("no such person", field="person_id")
            column = ExcusedAbsence.office_id if office_id is not None else ExcusedAbsence.person_id
            await s.execute(delete(ExcusedAbsence).where(ExcusedAbsence.meeting_id == meeting_id,
                                                         column == (office_id if office_id is not None else person_id)))
            row = ExcusedAbsence(meeting_id=meeting_id, office_id=office_id, person_id=person_id, reason=text,
                                 entered_by_id=caller.actor_id or meeting.created_by_id)
            s.add(row)
            await s.flush()
            record(uow, caller, "attendance.excuse", target_type="meeting", target_id=meeting_id,
                   details={"office_id": office_id, "person_id": person_id, "reason": text})
        return row

    async def withdraw_excuse(self, caller: Caller, meeting_id: int, excuse_id: int) -> None:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.EXCUSE_ABSENCE, meeting_access(meeting))
        async with self.db.write() as uow:
            done = await uow.session.execute(delete(ExcusedAbsence).where(ExcusedAbsence.id == excuse_id,
                                                                          ExcusedAbsence.meeting_id == meeting_id))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise ValidationFailed("no such excused absence in this meeting", field="excuse_id")
            record(uow, caller, "attendance.excuse_withdrawn", target_type="meeting", target_id=meeting_id,
                   details={"excuse_id": excuse_id})

    # -- the register -----------------------------------------------------------------------
    async def register(self, caller: Caller, meeting_id: int) -> dict[str, object]:
        """The register: per site and per person, with excuses (policy VIEW_REGISTER: those who run the
        session, and every invitee once the minutes are approved)."""
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.VIEW_REGISTER, await record_access(self.db, meeting))
        return await self.register_payload(meeting)

    async def live(self, meeting_id: int) -> tuple[Meeting, LiveRegister]:
        """Register and quorum for signaling's live pushes (the caller was checked when it joined)."""
        async with self.db.read() as session:
            meeting = await session.get(Meeting, meeting_id)
            if meeting is None:
                raise ValidationFailed("no such meeting", field="meeting_id")
            return meeting, await load_register(session, meeting)

    async def register_payload(self, meeting: Meeting) -> dict[str, object]:
        async with self.db.read() as session:
            live = await load_register(session, meeting)
            excuses = (await session.scalars(select(ExcusedAbsence)
                                             .where(ExcusedAbsence.meeting_id == meeting.id))).all()
            office_ids = set(live.site_ids) | set(live.register.sites)
            offices = {o.id: o for o in (await session.scalars(select(Office).where(Office.id.in_(office_ids)))).all()}
            people = {p.id: p for p in (await session.scalars(
                select(Person).where(Person.id.in_(set(live.register.people))))).all()}
        return register_document(meeting, live, offices, people, list(excuses))


def _presence(p: Presence) -> dict[str, object]:
    return {"present_now": p.present_now, "late_seconds": p.late_seconds, "left_early_seconds": p.left_early_seconds,
            "seconds": round(p.seconds, 1),
            "intervals": [{"start": i.start.isoformat(), "end": i.end.isoformat()} for i in p.intervals]}


def register_document(meeting: Meeting, live: LiveRegister, offices: dict[int, Office], people: dict[int, Person],
                      excuses: list[ExcusedAbsence]) -> dict[str, object]:
    excused_offices = {e.office_id: e.reason for e in excuses if e.office_id is not None}
    excused_people = {e.person_id: e.reason for e in excuses if e.person_id is not None}
    reg = live.register
    sites = []
    for office_id in sorted(live.site_ids | set(reg.sites), key=lambda o: offices[o].code if o in offices else ""):
        office = offices.get(office_id)
        presence = reg.sites.get(office_id)
        sites.append({"office_id": office_id, "code": office.code if office else "",
                      "name": office.name_en if office else "", "name_km": office.name_km if office else "",
                      "invited": office_id in live.site_ids, "excused": excused_offices.get(office_id),
                      **(_presence(presence) if presence else {"present_now": False, "intervals": [],
                                                               "late_seconds": None, "left_early_seconds": None,
                                                               "seconds": 0})})
    persons = []
    for person_id, presence in sorted(reg.people.items()):
        person = people.get(person_id)
        persons.append({"person_id": person_id, "full_name": person.full_name if person else "",
                        "office_id": reg.office_of.get(person_id), "excused": excused_people.get(person_id),
                        **_presence(presence)})
    q = live.quorum
    return {"meeting_id": meeting.id, "state": meeting.state.value, "grace_seconds": meeting.grace_seconds,
            "quorum": {"invited": q.invited, "present": q.present, "required": q.required, "met": q.met,
                       "percent": meeting.quorum_percent},
            "sites": sites, "people": persons,
            "excuses": [{"id": e.id, "office_id": e.office_id, "person_id": e.person_id, "reason": e.reason}
                        for e in excuses]}


async def last_evidence(session: AsyncSession, meeting_id: int, person_id: int) -> dt.datetime | None:
    """The latest moment any of the person's intervals in the meeting shows them connected."""
    value = await session.scalar(select(func.max(func.coalesce(AttendanceInterval.left_at,
                                                               AttendanceInterval.last_seen_at))).where(
        AttendanceInterval.meeting_id == meeting_id, AttendanceInterval.person_id == person_id))
    if isinstance(value, str):  # SQLite returns the raw text of a computed column
        value = dt.datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value
