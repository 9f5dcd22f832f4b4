"""Opening and closing a session; the live record of which agenda item ran when."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.db import Database
from meetings.errors import Conflict, ValidationFailed
from meetings.models import AgendaItem, AttendanceInterval, FloorGrant, Meeting, MeetingState
from meetings.models.base import utcnow
from meetings.policy import Action, Caller, require
from meetings.services.common import meeting_access, record
from meetings.services.meetings import MeetingService


class SessionService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def open(self, caller: Caller, meeting_id: int) -> Meeting:
        """Open the session: from now on only the moderators and the floor holder are heard."""
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.OPEN_SESSION, meeting_access(meeting))
        now = utcnow()
        async with self.db.write() as uow:
            done = await uow.session.execute(
                update(Meeting).where(Meeting.id == meeting_id, Meeting.state == MeetingState.SCHEDULED)
                .values(state=MeetingState.OPEN, opened_at=now, updated_at=now))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("the session was opened or closed meanwhile")
            record(uow, caller, "session.open", target_type="meeting", target_id=meeting_id)
        return await self.meetings.get(caller, meeting_id)

    async def set_rules(self, caller: Caller, meeting_id: int, *, quorum_percent: int | None = None,
                        grace_seconds: int | None = None) -> None:
        """The quorum share of invited sites, and the reconnect grace window (seconds)."""
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.MANAGE_MEETING, meeting_access(meeting))
        values: dict[str, int] = {}
        if quorum_percent is not None:
            if isinstance(quorum_percent, bool) or not isinstance(quorum_percent, int) or not 1 <= quorum_percent <= 100:
                raise ValidationFailed("quorum_percent must be between 1 and 100", field="quorum_percent")
            values["quorum_percent"] = quorum_percent
        if grace_seconds is not None:
            if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, int) or not 0 <= grace_seconds <= 3600:
                raise ValidationFailed("grace_seconds must be between 0 and 3600", field="grace_seconds")
            values["grace_seconds"] = grace_seconds
        if not values:
            return
        async with self.db.write() as uow:
            await uow.session.execute(update(Meeting).where(Meeting.id == meeting_id).values(**values))
            record(uow, caller, "meeting.attendance_rules", target_type="meeting", target_id=meeting_id,
                   details=values)

    async def close(self, caller: Caller, meeting_id: int) -> Meeting:
        """Close the session: the floor ends, open attendance intervals and the current item end now."""
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.CLOSE_SESSION, meeting_access(meeting))
        now = utcnow()
        async with self.db.write() as uow:
            s = uow.session
            done = await s.execute(update(Meeting).where(Meeting.id == meeting_id, Meeting.state == MeetingState.OPEN)
                                   .values(state=MeetingState.CLOSED, closed_at=now, updated_at=now))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("the session is not open")
            await s.execute(update(FloorGrant).where(FloorGrant.meeting_id == meeting_id, FloorGrant.ended_at.is_(None))
                            .values(ended_at=now, end_reason="closed"))
            await s.execute(update(AttendanceInterval)
                            .where(AttendanceInterval.meeting_id == meeting_id, AttendanceInterval.left_at.is_(None))
                            .values(left_at=now, last_seen_at=now, end_reason="closed"))
            if meeting.current_item_id is not None:
                await s.execute(update(AgendaItem).where(AgendaItem.id == meeting.current_item_id)
                                .values(ended_at=now))
            record(uow, caller, "session.close", target_type="meeting", target_id=meeting_id)
        return await self.meetings.get(caller, meeting_id)


async def mark_item_times(session: AsyncSession, meeting: Meeting, item_id: int | None, now: dt.datetime) -> None:
    """When the current item changes: the previous one ends now; the new one starts now (the first time)."""
    previous = meeting.current_item_id
    if previous is not None and previous != item_id:
        await session.execute(update(AgendaItem).where(AgendaItem.id == previous).values(ended_at=now))
    if item_id is not None and item_id != previous:
        await session.execute(update(AgendaItem).where(AgendaItem.id == item_id, AgendaItem.started_at.is_(None))
                              .values(started_at=now))
        await session.execute(update(AgendaItem).where(AgendaItem.id == item_id).values(ended_at=None))
