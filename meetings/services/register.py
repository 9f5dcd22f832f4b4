"""Read the attendance register and quorum of a meeting from its recorded connection intervals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.attendance import Connection, Quorum, Register, compute, quorum
from meetings.models import AttendanceInterval, Meeting, Person
from meetings.models.base import utcnow

#: Attendance counts participants' connections; the secretariat's console watching the board does not.
ATTENDING_CLIENT = "room"


@dataclass(frozen=True)
class LiveRegister:
    register: Register
    quorum: Quorum
    #: Every site the meeting expects: invited offices, offices of invited persons, and the host.
    site_ids: frozenset[int]


async def site_ids(session: AsyncSession, meeting: Meeting) -> frozenset[int]:
    offices = {i.office_id for i in meeting.invitations if i.office_id is not None}
    person_ids = [i.person_id for i in meeting.invitations if i.person_id is not None]
    if person_ids:
        offices |= set((await session.scalars(select(Person.office_id).where(Person.id.in_(person_ids)))).all())
    offices.add(meeting.host_office_id)
    return frozenset(offices)


async def load_register(session: AsyncSession, meeting: Meeting, now: dt.datetime | None = None) -> LiveRegister:
    """The register as of ``now``; while the meeting is not closed, open connections run until now."""
    rows = (await session.scalars(
        select(AttendanceInterval).where(AttendanceInterval.meeting_id == meeting.id,
                                         AttendanceInterval.client == ATTENDING_CLIENT)
    )).all()
    now = now or utcnow()  # after the query: a row committed meanwhile may start after an earlier "now"
    end = meeting.closed_at
    conns = [Connection(r.person_id, r.office_id, r.joined_at, r.left_at if r.left_at is not None
                        else (end if end is not None else None)) for r in rows]
    register = compute(conns, grace=dt.timedelta(seconds=meeting.grace_seconds), now=end or now,
                       start=meeting.starts_at, end=end)
    sites = await site_ids(session, meeting)
    present = len(register.present_sites() & sites)
    return LiveRegister(register, quorum(invited_sites=len(sites), present_sites=present,
                                         percent=meeting.quorum_percent), sites)
