"""Floor control records: who was given the floor, by whom, for how long, and how it ended.

The effect (whose audio the SFU forwards) lives in signaling; these rows are the "who spoke" of the
minutes, and every grant and revocation is audited.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from meetings.db import Database
from meetings.errors import ValidationFailed
from meetings.models import FloorGrant, Meeting
from meetings.models.base import utcnow
from meetings.policy import Action, Caller, require
from meetings.services.common import meeting_access, record
from meetings.services.meetings import MeetingService

END_REASONS = frozenset({"revoked", "expired", "yielded", "left", "closed"})
MAX_LIMIT_SECONDS = 4 * 3600


class FloorService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def grant(self, caller: Caller, meeting_id: int, *, person_id: int, office_id: int,
                    limit_seconds: int | None = None) -> FloorGrant:
        """Give ``person_id`` the floor; any grant still running in this meeting ends ("revoked")."""
        if limit_seconds is not None and not 1 <= limit_seconds <= MAX_LIMIT_SECONDS:
            raise ValidationFailed(f"the time limit must be between 1 and {MAX_LIMIT_SECONDS} seconds",
                                   field="limit_seconds")
        meeting = await self.meetings.get(caller, meeting_id)
        access = meeting_access(meeting)
        require(caller, Action.GRANT_FLOOR, access)
        now = utcnow()
        async with self.db.write() as uow:
            await uow.session.execute(
                update(FloorGrant).where(FloorGrant.meeting_id == meeting_id, FloorGrant.ended_at.is_(None))
                .values(ended_at=now, end_reason="revoked"))
            grant = FloorGrant(meeting_id=meeting_id, item_id=meeting.current_item_id, person_id=person_id,
                               office_id=office_id, granted_by_id=caller.actor_id, granted_at=now,
                               limit_seconds=limit_seconds)
            uow.session.add(grant)
            await uow.session.flush()
            record(uow, caller, "floor.grant", target_type="meeting", target_id=meeting_id,
                   details={"grant_id": grant.id, "person_id": person_id, "office_id": office_id,
                            "limit_seconds": limit_seconds})
        return grant

    async def grant_remote(self, caller: Caller, meeting_id: int, *, person_id: int, office_id: int | None,
                           limit_seconds: int | None = None) -> None:
        """Give the floor to someone who joined through a node's pipe (this server hosts the session; the
        person's record is the far end's, which keeps the grant's row): any grant running here ends
        ("revoked"); the grant is audited here."""
        if limit_seconds is not None and not 1 <= limit_seconds <= MAX_LIMIT_SECONDS:
            raise ValidationFailed(f"the time limit must be between 1 and {MAX_LIMIT_SECONDS} seconds",
                                   field="limit_seconds")
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.GRANT_FLOOR, meeting_access(meeting))
        async with self.db.write() as uow:
            await uow.session.execute(
                update(FloorGrant).where(FloorGrant.meeting_id == meeting_id, FloorGrant.ended_at.is_(None))
                .values(ended_at=utcnow(), end_reason="revoked"))
            record(uow, caller, "floor.grant", target_type="meeting", target_id=meeting_id,
                   details={"person_id": person_id, "office_id": office_id, "limit_seconds": limit_seconds,
                            "through_pipe": True})

    async def end_remote(self, caller: Caller, meeting_id: int, person_id: int, reason: str) -> None:
        """The floor of someone behind a node's pipe ended (see :meth:`grant_remote`): audited."""
        if reason not in END_REASONS:
            raise ValidationFailed(f"unknown end reason {reason!r}", field="reason")
        if reason == "revoked":
            meeting = await self.meetings.get(caller, meeting_id)
            require(caller, Action.GRANT_FLOOR, meeting_access(meeting))
        async with self.db.write() as uow:
            record(uow, caller, f"floor.{reason}", target_type="meeting", target_id=meeting_id,
                   details={"person_id": person_id, "through_pipe": True})

    async def follow_host(self, caller: Caller, meeting_id: int, holder: tuple[int, int, dt.datetime, int | None] | None,
                          *, node_id: int) -> bool:
        """The node that hosts ``meeting_id`` says who holds its floor (``(person id, office id, granted at,
        limit)``, None: nobody): this record follows. A grant running here that is not that one ends ("host":
        it ended at the host); a new one is written with the host's time, audited as the node's. Whether
        anything changed."""
        async with self.db.write() as uow:
            s = uow.session
            running = (await s.execute(select(FloorGrant).where(FloorGrant.meeting_id == meeting_id,
                                                                FloorGrant.ended_at.is_(None)))).scalars().all()
            keep = next((g for g in running if holder is not None and g.person_id == holder[0]), None)
            ended = [g for g in running if g is not keep]
            if not ended and (holder is None or keep is not None):
                return False
            now = utcnow()
            for grant in ended:
                grant.ended_at, grant.end_reason = max(now, grant.granted_at), "host"
                record(uow, caller, "floor.host", target_type="meeting", target_id=meeting_id,
                       details={"grant_id": grant.id, "person_id": grant.person_id, "node_id": node_id, "via": "node"})
            if holder is not None and keep is None:
                person_id, office_id, granted_at, limit = holder
                meeting = await s.get(Meeting, meeting_id)
                grant = FloorGrant(meeting_id=meeting_id, item_id=meeting.current_item_id if meeting else None,
                                   person_id=person_id, office_id=office_id, granted_by_id=None,
                                   granted_at=min(granted_at, now), limit_seconds=limit)
                s.add(grant)
                await s.flush()
                record(uow, caller, "floor.grant", target_type="meeting", target_id=meeting_id,
                       details={"grant_id": grant.id, "person_id": person_id, "office_id": office_id,
                                "limit_seconds": limit, "node_id": node_id, "via": "node"})
        return True

    async def end(self, caller: Caller, meeting_id: int, grant_id: int, reason: str,
                  at: dt.datetime | None = None) -> bool:
        """End a grant. ``revoked`` needs a moderator; ``yielded`` the holder; ``expired`` and ``left``
        are the server's own (the caller is the system acting on the session). ``at``: when it ended, if
        not now (a holder who never came back: their last evidence of life). False if already ended."""
        if reason not in END_REASONS:
            raise ValidationFailed(f"unknown end reason {reason!r}", field="reason")
        async with self.db.read() as session:
            grant = await session.get(FloorGrant, grant_id)
        if grant is None or grant.meeting_id != meeting_id:
            raise ValidationFailed("no such floor grant in this meeting", field="grant_id")
        if reason == "revoked":
            meeting = await self.meetings.get(caller, meeting_id)
            require(caller, Action.GRANT_FLOOR, meeting_access(meeting))
        elif reason == "yielded" and not caller.system and caller.actor_id != grant.person_id:
            raise ValidationFailed("only the holder yields the floor", field="reason")
        async with self.db.write() as uow:
            done = await uow.session.execute(
                update(FloorGrant).where(FloorGrant.id == grant_id, FloorGrant.ended_at.is_(None))
                .values(ended_at=max(at, grant.granted_at) if at is not None else utcnow(), end_reason=reason))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return False
            record(uow, caller, f"floor.{reason}", target_type="meeting", target_id=meeting_id,
                   details={"grant_id": grant_id, "person_id": grant.person_id})
        return True

    async def open_grant(self, caller: Caller, meeting_id: int) -> FloorGrant | None:
        """The grant still running in a meeting (after a restart: the one to restore), with its person."""
        await self.meetings.get(caller, meeting_id)
        async with self.db.read() as session:
            return (await session.scalars(
                select(FloorGrant).options(selectinload(FloorGrant.person), selectinload(FloorGrant.office))
                .where(FloorGrant.meeting_id == meeting_id, FloorGrant.ended_at.is_(None))
                .order_by(FloorGrant.granted_at.desc()).limit(1))).first()

    async def grants(self, caller: Caller, meeting_id: int) -> list[FloorGrant]:
        """Every grant of a meeting in order (the record of who spoke)."""
        meeting: Meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.VIEW_REGISTER, meeting_access(meeting))
        async with self.db.read() as session:
            rows = await session.scalars(select(FloorGrant).where(FloorGrant.meeting_id == meeting_id)
                                         .order_by(FloorGrant.granted_at, FloorGrant.id))
            return list(rows.all())
