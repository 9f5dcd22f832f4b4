"""Rows of a session's live record, inserted the way the live session would write them.

Branch i5-floor writes the services that record these (session open/close, attendance intervals,
floor grants, item start/end, excused absences). Until that is merged, tests of decisions, votes and
minutes create the rows here; switch these helpers to those services once they exist.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from meetings.models import AgendaItem, AttendanceInterval, ExcusedAbsence, FloorGrant, Meeting, MeetingState
from meetings.models.decisions import Decision, Outcome
from meetings.services import Services


async def open_session(services: Services, meeting_id: int, at: dt.datetime) -> None:
    async with services.db.write() as uow:
        await uow.session.execute(update(Meeting).where(Meeting.id == meeting_id)
                                  .values(state=MeetingState.OPEN, opened_at=at))


async def close_session(services: Services, meeting_id: int, at: dt.datetime) -> None:
    async with services.db.write() as uow:
        s = uow.session
        await s.execute(update(AttendanceInterval).where(AttendanceInterval.meeting_id == meeting_id,
                                                         AttendanceInterval.left_at.is_(None))
                        .values(left_at=at, last_seen_at=at, end_reason="closed"))
        await s.execute(update(FloorGrant).where(FloorGrant.meeting_id == meeting_id, FloorGrant.ended_at.is_(None))
                        .values(ended_at=at, end_reason="closed"))
        await s.execute(update(Meeting).where(Meeting.id == meeting_id)
                        .values(state=MeetingState.CLOSED, closed_at=at))


async def connect(services: Services, meeting_id: int, person_id: int, office_id: int, joined_at: dt.datetime,
                  left_at: dt.datetime | None = None, client: str = "room") -> None:
    async with services.db.write() as uow:
        uow.session.add(AttendanceInterval(meeting_id=meeting_id, person_id=person_id, office_id=office_id,
                                           client=client, joined_at=joined_at, last_seen_at=left_at or joined_at,
                                           left_at=left_at, end_reason="left" if left_at else ""))


async def item_times(services: Services, item_id: int, started_at: dt.datetime,
                     ended_at: dt.datetime | None) -> None:
    async with services.db.write() as uow:
        await uow.session.execute(update(AgendaItem).where(AgendaItem.id == item_id)
                                  .values(started_at=started_at, ended_at=ended_at))


async def grant_floor(services: Services, meeting_id: int, item_id: int | None, person_id: int, office_id: int,
                      granted_at: dt.datetime, ended_at: dt.datetime | None, granted_by_id: int | None = None) -> None:
    async with services.db.write() as uow:
        uow.session.add(FloorGrant(meeting_id=meeting_id, item_id=item_id, person_id=person_id, office_id=office_id,
                                   granted_by_id=granted_by_id, granted_at=granted_at, ended_at=ended_at,
                                   end_reason="yielded" if ended_at else ""))


async def excuse_office(services: Services, meeting_id: int, office_id: int, reason: str, by: int) -> None:
    async with services.db.write() as uow:
        uow.session.add(ExcusedAbsence(meeting_id=meeting_id, office_id=office_id, reason=reason, entered_by_id=by))


async def adopt_en_bloc(services: Services, meeting_id: int, item_id: int, by: int) -> None:
    """What branch i5-before's en-bloc adoption writes."""
    async with services.db.write() as uow:
        uow.session.add(Decision(meeting_id=meeting_id, item_id=item_id, outcome=Outcome.ADOPTED, text="",
                                 en_bloc=True, recorded_by_id=by))
