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
            await _end_what_runs(s, meeting, now)
            record(uow, caller, "session.close", target_type="meeting", target_id=meeting_id)
        return await self.meetings.get(caller, meeting_id)

    async def follow_host(self, caller: Caller, meeting_id: int, state: MeetingState, opened_at: dt.datetime | None,
                          closed_at: dt.datetime | None, *, node_id: int) -> bool:
        """The node that hosts ``meeting_id`` opened or closed its session (its pipe table says so): this
        record follows, with the node's times, audited as the node's (``session.open`` / ``session.close``,
        via "node"). Only forward (scheduled, open, closed): a stale table changes nothing. Whether it changed."""
        now = utcnow()
        opened = min(opened_at or now, now)
        async with self.db.write() as uow:
            s = uow.session
            meeting = await s.get(Meeting, meeting_id)
            if meeting is None:
                return False
            if state is MeetingState.OPEN and meeting.state is MeetingState.SCHEDULED:
                meeting.state, meeting.opened_at, meeting.updated_at = MeetingState.OPEN, opened, now
            elif state is MeetingState.CLOSED and meeting.state in (MeetingState.SCHEDULED, MeetingState.OPEN):
                closed = max(min(closed_at or now, now), meeting.opened_at or opened)
                meeting.opened_at = meeting.opened_at or opened
                meeting.state, meeting.closed_at, meeting.updated_at = MeetingState.CLOSED, closed, now
                await _end_what_runs(s, meeting, closed)
            else:
                return False
            record(uow, caller, "session.open" if state is MeetingState.OPEN else "session.close",
                   target_type="meeting", target_id=meeting_id,
                   details={"node_id": node_id, "via": "node", "at": (meeting.closed_at or meeting.opened_at).isoformat()})
        return True


async def _end_what_runs(session: AsyncSession, meeting: Meeting, at: dt.datetime) -> None:
    """The session closed at ``at``: the floor, open attendance intervals and the current item end then."""
    await session.execute(update(FloorGrant).where(FloorGrant.meeting_id == meeting.id, FloorGrant.ended_at.is_(None))
                          .values(ended_at=at, end_reason="closed"))
    await session.execute(update(AttendanceInterval)
                          .where(AttendanceInterval.meeting_id == meeting.id, AttendanceInterval.left_at.is_(None))
                          .values(left_at=at, last_seen_at=at, end_reason="closed"))
    if meeting.current_item_id is not None:
        await session.execute(update(AgendaItem).where(AgendaItem.id == meeting.current_item_id).values(ended_at=at))


async def mark_item_times(session: AsyncSession, meeting: Meeting, item_id: int | None, now: dt.datetime) -> None:
    """When the current item changes: the previous one ends now; the new one starts now (the first time)."""
    previous = meeting.current_item_id
    if previous is not None and previous != item_id:
        await session.execute(update(AgendaItem).where(AgendaItem.id == previous).values(ended_at=now))
    if item_id is not None and item_id != previous:
        await session.execute(update(AgendaItem).where(AgendaItem.id == item_id, AgendaItem.started_at.is_(None))
                              .values(started_at=now))
        await session.execute(update(AgendaItem).where(AgendaItem.id == item_id).values(ended_at=None))
