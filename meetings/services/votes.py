"""Votes the chair calls on an agenda item: one ballot per invited site, quorum recorded at opening.

State lives in the database (an open vote has ``closed_at`` NULL), so a vote survives a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.db import Database
from meetings.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meetings.models import Meeting, Office
from meetings.models.base import utcnow
from meetings.models.decisions import Ballot, Choice, Vote
from meetings.policy import Action, Caller, require
from meetings.services.common import clean_text, meeting_access, record
from meetings.services.decisions import _item_of, refuse_if_locked
from meetings.services.meetings import MeetingService
from meetings.services.register import load_register, site_ids

MAX_QUESTION = 500


@dataclass(frozen=True)
class Tally:
    yes: int
    no: int
    abstain: int

    @property
    def cast(self) -> int:
        return self.yes + self.no + self.abstain


def tally(vote: Vote) -> Tally:
    choices = [b.choice for b in vote.ballots]
    return Tally(choices.count(Choice.YES), choices.count(Choice.NO), choices.count(Choice.ABSTAIN))


def vote_payload(vote: Vote, offices: dict[int, Office] | None = None, *, ballots: bool = True) -> dict[str, Any]:
    """A vote for clients; per-site ballots only for those who run the session (or once closed)."""
    t = tally(vote)
    out: dict[str, Any] = {
        "id": vote.id, "item_id": vote.item_id, "question": vote.question, "open": vote.closed_at is None,
        "opened_at": vote.opened_at.isoformat(), "closed_at": vote.closed_at.isoformat() if vote.closed_at else None,
        "quorum": {"present": vote.sites_present, "invited": vote.sites_invited,
                   "required": vote.quorum_required, "met": vote.quorum_met},
        "tally": {"yes": t.yes, "no": t.no, "abstain": t.abstain, "cast": t.cast},
        "voted_office_ids": sorted(b.office_id for b in vote.ballots),
    }
    if ballots or vote.closed_at is not None:
        offices = offices or {}
        out["ballots"] = [{"office_id": b.office_id, "choice": b.choice.value,
                           "office": offices[b.office_id].name_en if b.office_id in offices else "",
                           "office_km": offices[b.office_id].name_km if b.office_id in offices else ""}
                          for b in sorted(vote.ballots, key=lambda b: b.office_id)]
    return out


async def office_map(session: AsyncSession, ids: set[int]) -> dict[int, Office]:
    if not ids:
        return {}
    return {o.id: o for o in (await session.scalars(select(Office).where(Office.id.in_(ids)))).all()}


class VoteService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def _vote(self, session: AsyncSession, vote_id: object) -> Vote:
        if isinstance(vote_id, bool) or not isinstance(vote_id, int):
            raise ValidationFailed("vote_id must be an id", field="vote_id")
        vote = await session.get(Vote, vote_id)
        if vote is None:
            raise NotFound("no such vote")
        return vote

    async def list(self, caller: Caller, meeting_id: int) -> Sequence[Vote]:
        await self.meetings.get(caller, meeting_id)
        async with self.db.read() as session:
            return (await session.scalars(select(Vote).where(Vote.meeting_id == meeting_id).order_by(Vote.id))).all()

    async def current(self, caller: Caller, meeting_id: int) -> Vote | None:
        """The open vote of a meeting, if any (any viewer)."""
        await self.meetings.get(caller, meeting_id)
        async with self.db.read() as session:
            return await session.scalar(select(Vote).where(Vote.meeting_id == meeting_id, Vote.closed_at.is_(None)))

    async def payload(self, vote: Vote, *, ballots: bool) -> dict[str, Any]:
        async with self.db.read() as session:
            offices = await office_map(session, {b.office_id for b in vote.ballots})
        return vote_payload(vote, offices, ballots=ballots)

    async def open(self, caller: Caller, meeting_id: int, item_id: object, question: object) -> Vote:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.RUN_VOTE, meeting_access(meeting))
        item = _item_of(meeting, item_id)
        text = clean_text(question, "question", max_length=MAX_QUESTION)
        async with self.db.write() as uow:
            session = uow.session
            await refuse_if_locked(session, meeting_id)
            if await session.scalar(select(Vote.id).where(Vote.meeting_id == meeting_id, Vote.closed_at.is_(None))):
                raise Conflict("a vote is already open in this meeting; close it first")
            live = await load_register(session, await _fresh(session, meeting_id))
            q = live.quorum
            vote = Vote(meeting_id=meeting_id, item_id=item.id, question=text, opened_by_id=caller.actor_id,
                        opened_at=utcnow(), sites_present=q.present, sites_invited=q.invited,
                        quorum_required=q.required, quorum_met=q.met)
            session.add(vote)
            await session.flush()
            record(uow, caller, "vote.open", target_type="meeting", target_id=meeting_id,
                   details={"vote_id": vote.id, "item_id": item.id, "question": text,
                            "quorum": {"present": q.present, "invited": q.invited, "required": q.required,
                                       "met": q.met}})
        return await self._reload(vote.id)

    async def cast(self, caller: Caller, vote_id: object, choice: object) -> Vote:
        """The caller's site votes; a later ballot from the same office (before closing) replaces it."""
        try:
            chosen = Choice(str(choice))
        except ValueError:
            raise ValidationFailed("choice must be yes, no or abstain", field="choice") from None
        async with self.db.read() as session:
            vote = await self._vote(session, vote_id)
        meeting = await self.meetings.get(caller, vote.meeting_id)
        principal = require(caller, Action.CAST_BALLOT, meeting_access(meeting))
        if principal is None:
            raise PermissionDenied("the operator has no site to vote for")
        for attempt in range(2):  # two people of one office racing on PostgreSQL: the loser retries
            try:
                return await self._cast(caller, meeting, vote.id, principal.office_id, chosen)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _cast(self, caller: Caller, meeting: Meeting, vote_id: int, office_id: int, chosen: Choice) -> Vote:
        async with self.db.write() as uow:
            session = uow.session
            vote = await self._vote(session, vote_id)
            if vote.closed_at is not None:
                raise Conflict("this vote is closed")
            if office_id not in await site_ids(session, meeting):
                raise PermissionDenied("your office is not one of the sites invited to vote")
            ballot = await session.scalar(select(Ballot).where(Ballot.vote_id == vote.id,
                                                               Ballot.office_id == office_id))
            previous = ballot.choice.value if ballot else None
            if ballot is None:
                session.add(Ballot(vote_id=vote.id, office_id=office_id, person_id=caller.actor_id,
                                   choice=chosen, cast_at=utcnow()))
            else:
                ballot.choice, ballot.person_id, ballot.cast_at = chosen, caller.actor_id, utcnow()  # type: ignore[assignment]
            await session.flush()
            record(uow, caller, "vote.ballot", target_type="meeting", target_id=vote.meeting_id,
                   details={"vote_id": vote.id, "office_id": office_id, "choice": chosen.value,
                            "previous": previous})
        return await self._reload(vote_id)

    async def close(self, caller: Caller, vote_id: object) -> Vote:
        async with self.db.read() as session:
            vote = await self._vote(session, vote_id)
        meeting = await self.meetings.get(caller, vote.meeting_id)
        require(caller, Action.RUN_VOTE, meeting_access(meeting))
        async with self.db.write() as uow:
            vote = await self._vote(uow.session, vote.id)
            if vote.closed_at is not None:
                raise Conflict("this vote is already closed")
            await uow.session.refresh(vote, ["ballots"])
            vote.closed_at = utcnow()
            t = tally(vote)
            record(uow, caller, "vote.close", target_type="meeting", target_id=vote.meeting_id,
                   details={"vote_id": vote.id, "yes": t.yes, "no": t.no, "abstain": t.abstain,
                            "ballots": {str(b.office_id): b.choice.value for b in vote.ballots}})
        return await self._reload(vote.id)

    async def _reload(self, vote_id: int) -> Vote:
        async with self.db.read() as session:
            vote = await session.get(Vote, vote_id)
        if vote is None:  # pragma: no cover
            raise NotFound("no such vote")
        return vote


async def _fresh(session: AsyncSession, meeting_id: int) -> Meeting:
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:  # pragma: no cover
        raise NotFound("no such meeting")
    return meeting
