"""Decisions on agenda items: recorded and changed by the chair or the secretariat until the minutes
are approved; every change is audited with the old and the new value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.db import Database
from meetings.errors import Conflict, ValidationFailed
from meetings.models import AgendaItem, Meeting
from meetings.models.base import utcnow
from meetings.models.decisions import Decision, Minutes, MinutesState, Outcome, Vote
from meetings.policy import Action, Caller, require
from meetings.services.common import clean_int, clean_long_text, meeting_access, record
from meetings.services.meetings import MeetingService

MAX_DECISION_TEXT = 4000


def parse_outcome(value: object) -> Outcome:
    try:
        return Outcome(str(value))
    except ValueError:
        raise ValidationFailed("outcome must be one of: " + ", ".join(o.value for o in Outcome),
                               field="outcome") from None


async def minutes_approved(session: AsyncSession, meeting_id: int) -> bool:
    state = await session.scalar(select(Minutes.state).where(Minutes.meeting_id == meeting_id))
    return state is MinutesState.APPROVED


async def refuse_if_locked(session: AsyncSession, meeting_id: int) -> None:
    if await minutes_approved(session, meeting_id):
        raise Conflict("the minutes of this meeting are approved; the record can no longer change")


def decision_payload(decision: Decision) -> dict[str, Any]:
    return {"id": decision.id, "item_id": decision.item_id, "outcome": decision.outcome.value,
            "text": decision.text, "en_bloc": decision.en_bloc, "vote_id": decision.vote_id,
            "recorded_at": decision.recorded_at.isoformat()}


class DecisionService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def list(self, caller: Caller, meeting_id: int) -> Sequence[Decision]:
        await self.meetings.get(caller, meeting_id)  # visibility (404 for those who may not see it)
        async with self.db.read() as session:
            return (await session.scalars(select(Decision).where(Decision.meeting_id == meeting_id)
                                          .order_by(Decision.item_id))).all()

    async def record(self, caller: Caller, meeting_id: int, item_id: object, *, outcome: object, text: object = "",
                     vote_id: object = None) -> Decision:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.RECORD_DECISION, meeting_access(meeting))
        item = _item_of(meeting, item_id)
        new_outcome = parse_outcome(outcome)
        new_text = clean_long_text(text, "text", max_length=MAX_DECISION_TEXT)
        async with self.db.write() as uow:
            session = uow.session
            await refuse_if_locked(session, meeting_id)
            linked_vote: int | None = None
            if vote_id is not None:
                if isinstance(vote_id, bool) or not isinstance(vote_id, int):
                    raise ValidationFailed("vote_id must be an id", field="vote_id")
                vote = await session.get(Vote, clean_int(vote_id, "vote_id"))  # 10^30: a 400, not a 500
                if vote is None or vote.meeting_id != meeting_id or vote.item_id != item.id:
                    raise ValidationFailed("no such vote on this item", field="vote_id")
                linked_vote = vote.id
            decision = await session.scalar(select(Decision).where(Decision.item_id == item.id))
            old = None
            if decision is None:
                decision = Decision(meeting_id=meeting_id, item_id=item.id, outcome=new_outcome, text=new_text,
                                    vote_id=linked_vote, recorded_by_id=caller.actor_id, recorded_at=utcnow())
                session.add(decision)
            else:
                old = {"outcome": decision.outcome.value, "text": decision.text, "vote_id": decision.vote_id,
                       "en_bloc": decision.en_bloc}
                if (old["outcome"], old["text"], old["vote_id"]) == (new_outcome.value, new_text, linked_vote):
                    return decision
                decision.outcome, decision.text, decision.vote_id = new_outcome, new_text, linked_vote
                decision.en_bloc = False  # changed individually: no longer an en-bloc adoption
                decision.recorded_by_id, decision.recorded_at = caller.actor_id, utcnow()
            await session.flush()
            record(uow, caller, "decision.record" if old is None else "decision.change", target_type="meeting",
                   target_id=meeting_id, details={"item_id": item.id, "old": old,
                                                  "new": {"outcome": new_outcome.value, "text": new_text,
                                                          "vote_id": linked_vote}})
        return decision


def _item_of(meeting: Meeting, item_id: object) -> AgendaItem:
    item_id = clean_int(item_id, "item_id")
    for item in meeting.agenda:
        if item.id == item_id:
            return item
    raise ValidationFailed("no such agenda item in this meeting", field="item_id")
