"""Positions in advance (as in Estonia's e-Cabinet): each invited office marks each agenda item before
the deadline; the chair sees the tally and adopts the unopposed items together at the start.

An item is *unopposed* when no office objects and none wishes to speak. Silence counts as assent, as
in e-Cabinet (an office that has no remark need not say so), but the tally names who has not answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from meetings.db import Database
from meetings.errors import Conflict, NotFound, ValidationFailed
from meetings.models import AgendaItem, Decision, Meeting, Office, Outcome, Position, Stance
from meetings.policy import Action, Caller, require
from meetings.services.common import clean_text, meeting_access, record
from meetings.services.meetings import MeetingService, _parse_time


@dataclass
class ItemTally:
    item: AgendaItem
    offices: dict[Stance, list[Office]] = field(default_factory=lambda: {s: [] for s in Stance})
    comments: list[tuple[Office, Stance, str]] = field(default_factory=list)
    missing: list[Office] = field(default_factory=list)
    decided: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {s.value: len(o) for s, o in self.offices.items()} | {"no_answer": len(self.missing)}

    @property
    def unopposed(self) -> bool:
        return not self.offices[Stance.OBJECTION] and not self.offices[Stance.WISH_TO_SPEAK]


def deadline_of(meeting: Meeting) -> dt.datetime:
    """Positions are accepted until the deadline, or until the meeting starts when none is set."""
    return meeting.positions_deadline or meeting.starts_at


class PositionService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def set_deadline(self, caller: Caller, meeting_id: int, deadline: object) -> Meeting:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.MANAGE_MEETING, meeting_access(meeting))
        when = None if deadline in (None, "") else _parse_time(deadline, "positions_deadline")
        if when is not None and when > meeting.starts_at:
            raise ValidationFailed("the deadline must not be after the meeting starts", field="positions_deadline")
        async with self.db.write() as uow:
            fresh = await uow.session.get(Meeting, meeting.id)
            assert fresh is not None
            fresh.positions_deadline = when
            fresh.updated_at = dt.datetime.now(dt.UTC)
            record(uow, caller, "positions.deadline", target_type="meeting", target_id=meeting.id,
                   details={"deadline": when.isoformat() if when else None})
        return await self.meetings.get(caller, meeting.id)

    async def submit(self, caller: Caller, meeting_id: int, item_id: int, *, stance: object, comment: object = "",
                     now: dt.datetime | None = None) -> Position:
        meeting = await self.meetings.get(caller, meeting_id)
        me = require(caller, Action.SUBMIT_POSITION, meeting_access(meeting))
        if me is None:
            raise ValidationFailed("the operator has no office to mark positions for")
        try:
            chosen = Stance(str(stance))
        except ValueError:
            raise ValidationFailed("stance must be no_objection, wish_to_speak or objection", field="stance") from None
        note = clean_text(comment or "", "comment", max_length=2000, min_length=0)
        now = now or dt.datetime.now(dt.UTC)
        if now >= deadline_of(meeting):
            raise Conflict("the deadline for positions has passed")
        if item_id not in {i.id for i in meeting.agenda}:
            raise NotFound("no such agenda item")
        async with self.db.write() as uow:
            position = await uow.session.scalar(select(Position).where(
                Position.item_id == item_id, Position.office_id == me.office_id))
            previous = position.stance.value if position else None
            if position is None:
                position = Position(item_id=item_id, office_id=me.office_id, stance=chosen, comment=note,
                                    person_id=me.person_id, updated_at=now)
                uow.session.add(position)
            else:
                position.stance, position.comment, position.person_id, position.updated_at = (
                    chosen, note, me.person_id, now)
            await uow.session.flush()
            record(uow, caller, "position.submit", target_type="meeting", target_id=meeting.id,
                   details={"item_id": item_id, "office_id": me.office_id, "stance": chosen.value,
                            "previous": previous, "comment": bool(note)})
        return position

    async def mine(self, caller: Caller, meeting_id: int) -> dict[int, Position]:
        """The caller's office's positions on the meeting's items (by item id)."""
        meeting = await self.meetings.get(caller, meeting_id)
        if caller.principal is None:
            return {}
        async with self.db.read() as session:
            rows = (await session.execute(select(Position).where(
                Position.item_id.in_([i.id for i in meeting.agenda]),
                Position.office_id == caller.principal.office_id))).scalars().all()
        return {p.item_id: p for p in rows}

    async def tally(self, caller: Caller, meeting_id: int) -> list[ItemTally]:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.VIEW_POSITIONS, meeting_access(meeting))
        async with self.db.read() as session:
            return await self._tally(session, meeting)

    @staticmethod
    async def _tally(session, meeting: Meeting) -> list[ItemTally]:  # type: ignore[no-untyped-def]
        item_ids = [i.id for i in meeting.agenda]
        positions = (await session.execute(select(Position).where(Position.item_id.in_(item_ids))
                                           .order_by(Position.id))).scalars().all()
        decided = set((await session.execute(select(Decision.item_id).where(
            Decision.item_id.in_(item_ids)))).scalars())
        invited = {i.office_id: i.office for i in meeting.invitations if i.office_id is not None and i.office}
        out: list[ItemTally] = []
        for item in meeting.agenda:
            tally = ItemTally(item=item, decided=item.id in decided)
            answered: set[int] = set()
            for p in positions:
                if p.item_id != item.id:
                    continue
                tally.offices[p.stance].append(p.office)
                answered.add(p.office_id)
                if p.comment:
                    tally.comments.append((p.office, p.stance, p.comment))
            tally.missing = sorted((o for oid, o in invited.items() if oid not in answered), key=lambda o: o.code)
            out.append(tally)
        return out

    async def adopt_en_bloc(self, caller: Caller, meeting_id: int) -> list[Decision]:
        """Adopt, in one action, every undecided item no office objects to or wishes to speak on."""
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.ADOPT_EN_BLOC, meeting_access(meeting))
        async with self.db.write() as uow:
            tallies = await self._tally(uow.session, meeting)
            chosen = [t.item for t in tallies if t.unopposed and not t.decided]
            if not chosen:
                raise Conflict("no unopposed item is left to adopt")
            decisions = [Decision(meeting_id=meeting.id, item_id=item.id, outcome=Outcome.ADOPTED, en_bloc=True,
                                  text="Adopted en bloc: no objection and no wish to speak.",
                                  recorded_by_id=caller.actor_id) for item in chosen]
            uow.session.add_all(decisions)
            await uow.session.flush()
            record(uow, caller, "decision.adopt_en_bloc", target_type="meeting", target_id=meeting.id,
                   details={"item_ids": [i.id for i in chosen], "decision_ids": [d.id for d in decisions]})
        return decisions

    async def decisions(self, caller: Caller, meeting_id: int) -> Sequence[Decision]:
        meeting = await self.meetings.get(caller, meeting_id)
        async with self.db.read() as session:
            return (await session.execute(select(Decision).where(Decision.meeting_id == meeting.id)
                                          .order_by(Decision.id))).scalars().all()
