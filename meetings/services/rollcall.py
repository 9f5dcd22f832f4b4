"""Roll calls: the chair calls the roll; each site answers once ("I am present"); the chair closes it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from meetings.db import Database
from meetings.errors import Conflict, PermissionDenied
from meetings.models import RollCall, RollCallResponse
from meetings.models.base import utcnow
from meetings.policy import Action, Caller, require
from meetings.services.common import meeting_access, record
from meetings.services.meetings import MeetingService


@dataclass(frozen=True)
class RollCallState:
    id: int
    open: bool
    started_at: str
    #: office_id -> person_id who answered for it
    answered: dict[int, int]


class RollCallService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def start(self, caller: Caller, meeting_id: int) -> RollCallState:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.RUN_ROLL_CALL, meeting_access(meeting))
        if await self.current(meeting_id) is not None:
            raise Conflict("a roll call is already running")
        async with self.db.write() as uow:
            call = RollCall(meeting_id=meeting_id, started_by_id=caller.actor_id or meeting.created_by_id,
                            started_at=utcnow())
            uow.session.add(call)
            await uow.session.flush()
            record(uow, caller, "roll_call.start", target_type="meeting", target_id=meeting_id,
                   details={"roll_call_id": call.id})
        return RollCallState(call.id, True, call.started_at.isoformat(), {})

    async def answer(self, caller: Caller, meeting_id: int, roll_call_id: int) -> RollCallState:
        """The caller answers for their office; a second answer from the same office changes nothing."""
        meeting = await self.meetings.get(caller, meeting_id)
        principal = require(caller, Action.ANSWER_ROLL_CALL, meeting_access(meeting))
        if principal is None:
            raise PermissionDenied("the operator does not answer roll calls")
        current = await self.current(meeting_id)
        if current is None or current.id != roll_call_id:
            raise Conflict("this roll call is not running")
        if principal.office_id not in current.answered:
            try:
                async with self.db.write() as uow:
                    uow.session.add(RollCallResponse(roll_call_id=roll_call_id, office_id=principal.office_id,
                                                     person_id=principal.person_id, responded_at=utcnow()))
                    await uow.session.flush()
                    record(uow, caller, "roll_call.answer", target_type="meeting", target_id=meeting_id,
                           details={"roll_call_id": roll_call_id, "office_id": principal.office_id})
            except IntegrityError:
                pass  # someone else from the same office answered first
        state = await self.current(meeting_id)
        assert state is not None
        return state

    async def close(self, caller: Caller, meeting_id: int) -> RollCallState:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.RUN_ROLL_CALL, meeting_access(meeting))
        current = await self.current(meeting_id)
        if current is None:
            raise Conflict("no roll call is running")
        async with self.db.write() as uow:
            await uow.session.execute(update(RollCall).where(RollCall.id == current.id).values(closed_at=utcnow()))
            record(uow, caller, "roll_call.close", target_type="meeting", target_id=meeting_id,
                   details={"roll_call_id": current.id, "answered": sorted(current.answered)})
        return RollCallState(current.id, False, current.started_at, current.answered)

    async def current(self, meeting_id: int) -> RollCallState | None:
        """The running roll call of a meeting, if any (read by signaling for everyone in the room)."""
        async with self.db.read() as session:
            call = (await session.scalars(select(RollCall).where(RollCall.meeting_id == meeting_id,
                                                                 RollCall.closed_at.is_(None))
                                          .order_by(RollCall.id.desc()).limit(1))).first()
            if call is None:
                return None
            rows = (await session.scalars(select(RollCallResponse)
                                          .where(RollCallResponse.roll_call_id == call.id))).all()
        return RollCallState(call.id, True, call.started_at.isoformat(), {r.office_id: r.person_id for r in rows})
