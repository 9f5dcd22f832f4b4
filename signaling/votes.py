"""Votes in the live room: the chair opens and closes, each site casts one ballot.

The votes themselves live in the database (meetings/services/votes.py), which checks every
permission again; this module turns the events into service calls and pushes each change to the
room as ``vote``: everyone gets the question, the quorum at opening and the running tally, those who
run the session also get the ballot of each site (everyone does once the vote is closed).

A node's share of a centre-hosted session (``room.floor.deferred``) holds no vote: the centre's room sends
the node's people each ``vote`` through the pipe, the node hands it to their pages and carries their
ballots to the centre (``room.to_host``), where they are cast as theirs; a refusal comes back to the page
as ``vote_refused``. Opening and closing a vote are the host's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meetings.models.decisions import Vote
from meetings.errors import Conflict
from meetings.services.votes import VoteService
from signaling.errors import InvalidMessage, WrongState
from signaling.validation import Check, Schema, integer, one_of

if TYPE_CHECKING:
    from signaling.namespace import Connection
    from signaling.room import Room



def short_text(max_length: int) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > max_length:
            raise InvalidMessage(f"{name} must be text of 1 to {max_length} characters")
        return value

    return check


SCHEMAS = {
    "vote_open": Schema(required={"item_id": integer(1, 2**31), "question": short_text(500)}),
    "vote_cast": Schema(required={"vote_id": integer(1, 2**31), "choice": one_of("yes", "no", "abstain")}),
    "vote_close": Schema(required={"vote_id": integer(1, 2**31)}),
    "vote_state": Schema(),
}
EVENTS = frozenset(SCHEMAS)


async def push_vote(room: Room, votes: VoteService, vote: Vote) -> None:
    """Everyone in ``room`` gets the vote as it is now (those who run the session with each site's ballot)."""
    full = await votes.payload(vote, ballots=True)
    public = await votes.payload(vote, ballots=False)
    for participant in list(room.participants.values()):
        await room.outbox.to(participant, "vote", full if participant.may_moderate else public)


class VoteHandlers:
    """Mixed into the namespace: ``handle_<event>`` for each vote event."""

    signaling: Any
    _joined: Any

    async def _push(self, room: Room, vote: Vote) -> None:
        await push_vote(room, self.signaling.services.votes, vote)

    async def handle_vote_open(self, sid: str, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        room.floor.refuse_if_deferred()
        vote = await self.signaling.services.votes.open(participant.caller, room.meeting_id, payload["item_id"],
                                                        payload["question"])
        await self._push(room, vote)
        return {"vote_id": vote.id}

    async def _open_vote(self, connection: Connection, vote_id: int) -> tuple[Any, Room, Vote]:
        """The room's open vote, which must be the one the client names (never another meeting's)."""
        participant, room = self._joined(connection)
        vote = await self.signaling.services.votes.current(participant.caller, room.meeting_id)
        if vote is None or vote.id != vote_id:
            raise Conflict("this vote is not open")
        return participant, room, vote

    async def handle_vote_cast(self, sid: str, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        if room.floor.deferred:  # the host's vote: the ballot goes there
            if room.to_host is None:
                raise WrongState("the server that runs this session cannot be reached now: vote again once "
                                 "the link is back", code="host_unreachable")
            await room.to_host(participant, "vote_cast", {"vote_id": payload["vote_id"], "choice": payload["choice"]})
            participant.host_vote_choice = payload["choice"]
            return {"vote_id": payload["vote_id"], "choice": payload["choice"], "relayed": True}
        participant, room, vote = await self._open_vote(connection, payload["vote_id"])
        vote = await self.signaling.services.votes.cast(participant.caller, vote.id, payload["choice"])
        await self._push(room, vote)
        return {"vote_id": vote.id, "choice": payload["choice"]}

    async def handle_vote_close(self, sid: str, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        self._joined(connection)[1].floor.refuse_if_deferred()
        participant, room, vote = await self._open_vote(connection, payload["vote_id"])
        vote = await self.signaling.services.votes.close(participant.caller, vote.id)
        await self._push(room, vote)
        return {"vote": await self.signaling.services.votes.payload(vote, ballots=True)}

    async def handle_vote_state(self, sid: str, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        """The open vote after joining or reconnecting (it survives a server restart: it is in the DB)."""
        participant, room = self._joined(connection)
        if room.floor.deferred:  # what the host last sent them
            vote_now = participant.host_vote
            return {"vote": vote_now, "my_site_choice": participant.host_vote_choice if vote_now else None}
        votes = self.signaling.services.votes
        vote = await votes.current(participant.caller, room.meeting_id)
        if vote is None:
            return {"vote": None}
        payload_out = await votes.payload(vote, ballots=participant.may_moderate)
        mine = next((b.choice.value for b in vote.ballots if b.office_id == participant.grant.principal.office_id),
                    None)
        return {"vote": payload_out, "my_site_choice": mine}
