"""The centre's ends of the nodes' pipes: one :class:`~provincial_nodes.pipe_link.PipeLink` per
connected node, opened with its control channel (web/views/nodes.py) and closed with it.

Each connection gets new keys and its own UDP socket; ``hello`` tells the node the port and the keys.
What a node asks for is checked by :class:`CentreGate`: a meeting its office hosts or is invited to,
its own office's people whom the join policy lets in (meetings/services/nodes.py); a forged request
is refused, counted as a refusal, and changes nothing. The node's people are participants of the
centre's room like any other (attendance for their office, the floor's gate on their voice, the
lock, the lobby, removals), alive while the pipe is; the rooms a node carries stay open while it does.

A briefing the node's own office hosts is run on the node (a regional command's, whose commander opens it,
closes it and gives the floor in the command's hall, WAN or not): the centre's room defers its session and
floor to the node's tables (signaling/floor.py ``defer_to_host``) and gates the voices of the people who
join it here (other commands, ministries) by the node's floor. The centre's database stays the record:
it follows the node's opening, closing and floor grants, audited as the node's. When the node leaves the
meeting (not a cut: a cut keeps the deferral for the grace period), the centre runs the session again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from typing import Any

from aiohttp import web

from media.pipe_transport import PipeTransport, new_keys
from meetings.errors import Conflict, MeetingsError
from meetings.models.base import utcnow
from meetings.policy import Caller
from meetings.services import Services
from signaling.errors import SignalingError
from signaling.votes import SCHEMAS as VOTE_SCHEMAS
from signaling.votes import push_vote
from signaling.participant import Participant
from signaling.room import Room
from signaling.server import Rooms

from .pipe_frames import HostSession, PipeRefused, aware_time
from .pipe_link import PipeLink, SendFrame
from .roster import claimed_person

log = logging.getLogger("provincial_nodes.centre")

CENTRE_PIPES: web.AppKey[CentrePipes] = web.AppKey("centre_pipes")
#: How long a cut node's people stay in the centre's rooms ("reconnecting") before they are dropped.
GRACE_SECONDS = 120.0
#: A datagram of the pipe within this long is evidence that the node's people are there (keep-alive: 5 s).
ALIVE_WITHIN_SECONDS = 6.0
#: The largest ballot a node relays (a vote id and a choice).
MAX_VOTE_BYTES = 256


class CentreGate:
    """What the centre checks of a node's pipe frames, and how the node's people join its rooms: as
    participants of their own (attendance for their office, the floor's gate on their voice, the lock,
    the lobby and removals), whose messages go through the pipe (see the module docstring)."""

    def __init__(self, services: Services, rooms: Rooms, node_id: int, address: str,
                 cut_at: dt.datetime | None = None, *, office_id: int | None = None,
                 hosted: dict[int, int] | None = None) -> None:
        #: When the node's previous link was cut (within the grace period): who joined its hall since
        #: is present from their local join, not from this link.
        self._cut_at = cut_at
        self._services = services
        self._rooms = rooms
        self._node_id = node_id
        self._address = address
        self._office_id = office_id
        #: The meetings whose session a node runs, by meeting id: the node's id (shared by the node's links).
        self._hosted = hosted if hosted is not None else {}
        self.link: PipeLink | None = None

    async def room(self, meeting_id: int) -> Room | None:
        try:
            meeting = await self._services.nodes.node_meeting(self._node_id, meeting_id, address=self._address)
        except MeetingsError as exc:
            raise PipeRefused(str(exc)) from None
        room = await self._rooms.open_for_pipe(meeting)
        room.holds.add(self.link)
        if self._office_id is not None and meeting.host_office_id == self._office_id:
            self._hosted[meeting_id] = self._node_id
            room.floor.defer_to_host(gate_here=True)  # the node runs its own office's briefing
            room.to_host = self.link.relay_up if self.link is not None else None  # a holder's yield goes there
            log.info("the node runs the meeting's session", extra={
                "event": "node.hosts_session", "node_id": self._node_id, "meeting_id": meeting_id})
        return room

    def _carried(self, room: Room) -> dict[str, Participant]:
        """The node's people in ``room``: this link's, and those an earlier link of the node left waiting."""
        here = list(room.participants.values()) + list(room.moderation.lobby.values())
        return {p.id: p for p in here if p.via is self.link or self._parked(p)}

    def _parked(self, participant: Participant) -> bool:
        via = participant.via
        return isinstance(via, PipeLink) and via.closed and via.owner == self._node_id

    async def people(self, room: Room, entries: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        claimed = [claimed_person(e) for e in entries]
        try:
            meeting = await self._services.nodes.node_meeting(self._node_id, room.meeting_id, address=self._address)
            grants = await self._services.nodes.node_grants(self._node_id, meeting, [p for _, p in claimed],
                                                            address=self._address)
        except MeetingsError as exc:
            raise PipeRefused(str(exc)) from None
        carried = self._carried(room)
        for participant_id, _ in claimed:
            if participant_id not in carried and (participant_id in room.participants
                                                  or participant_id in room.moderation.lobby):
                raise PipeRefused(f"participant {participant_id} is already in the meeting")
        listed = {participant_id for participant_id, _ in claimed}
        for participant_id, participant in carried.items():
            if participant_id not in listed:
                await room.remove(participant, status="left")
        for entry, (participant_id, person_id) in zip(entries, claimed, strict=True):
            participant = carried.get(participant_id)
            if participant is not None and participant.via is not self.link:  # back after a cut: the same stay
                participant.via, participant.reconnecting = self.link, False
                await room.moderation.set_presence(participant, "joined")
                await room.outbox.broadcast(room, "participant_joined", participant.public())
            if participant is None:
                participant = Participant(id=participant_id, sid="", grant=grants[person_id], address=self._address,
                                          via=self.link, audio_muted=entry.get("audio_muted") is True,
                                          video_muted=entry.get("video_muted") is True,
                                          joined_at=self._joined_during_cut(entry.get("joined_at")))
                try:
                    await room.join(participant)
                except SignalingError as exc:  # removed from the meeting, or it is locked: not let in
                    log.info("a node's participant was not let in: %s", exc, extra={
                        "event": "node.participant_refused", "node_id": self._node_id,
                        "participant_id": participant_id, "meeting_id": room.meeting_id})
            if participant.id not in room.participants:  # not let in, or waiting in the lobby
                continue
            for kind in ("audio", "video"):
                muted = entry.get(f"{kind}_muted") is True
                if muted != getattr(participant, f"{kind}_muted"):
                    await room.set_muted(participant, kind, muted)
            raised = entry.get("hand_raised") is True
            if raised != (participant.hand_raised_at is not None) and not (raised and room.floor.holds_floor(participant)):
                # their hand in the hall is in the session's queue (one the floor answered stays down: the
                # node lowers it as its table says who holds the floor)
                await room.moderation.raise_hand(participant, raised)
        carried = self._carried(room)
        return ({pid for pid, p in carried.items() if pid in room.participants},
                {pid for pid in carried if pid in room.moderation.lobby})

    def _joined_during_cut(self, value: object) -> dt.datetime | None:
        """A node's person's local join time, when it falls in the cut before this link (else None: now)."""
        at = aware_time(value)
        if self._cut_at is None or at is None:
            return None
        return min(max(at, self._cut_at), utcnow())

    async def release(self, room: Room, status: str) -> None:
        for participant in self._carried(room).values():
            if status == "parked" and participant.id in room.participants:
                # A cut: they are still in their hall. They stay, "reconnecting", until the node is back
                # (the same participants, the same attendance interval) or the grace period ends.
                participant.reconnecting = True
                await room.moderation.set_presence(participant, "reconnecting")
                await room.outbox.broadcast(room, "participant_joined", participant.public())
                continue
            if status in ("dropped", "parked"):
                participant.gone_at = utcnow()
            await room.remove(participant, status="dropped" if status == "parked" else status)
        room.holds.discard(self.link)
        if self.link is not None and room.to_host == self.link.relay_up:
            room.to_host = None
        if status != "parked" and self._hosted.get(room.meeting_id) == self._node_id:
            del self._hosted[room.meeting_id]
            await room.floor.resume_hosting()  # the node left its meeting: the centre runs the session again
        await self._rooms.discard_if_empty(room)

    async def follow(self, room: Room, session: HostSession) -> None:
        """The session state in the table of a node that runs the meeting (its office hosts it; any other
        node's is ignored): the centre's record follows it (audited as the node's), then the room: its
        people's pages, its gate, its recording."""
        if self._hosted.get(room.meeting_id) != self._node_id or not room.floor.deferred:
            return
        caller = Caller(principal=None, address=self._address, system=True)
        try:
            await self._services.session.follow_host(caller, room.meeting_id, session.state, session.opened_at,
                                                     session.closed_at, node_id=self._node_id)
            holder = self._holder(room, session.floor)
            if holder is not False:
                await self._services.floor.follow_host(caller, room.meeting_id, holder, node_id=self._node_id)
        except MeetingsError as exc:  # a full disk, a busy database: the next table tries again
            log.warning("could not follow the node's session: %s", exc, extra={
                "event": "node.session_follow_failed", "meeting_id": room.meeting_id})
            return
        if await room.floor.follow_host(session.state, session.opened_at, session.closed_at):
            log.info("the node's session is %s", session.state.value, extra={
                "event": "node.session_followed", "meeting_id": room.meeting_id, "state": session.state.value})
        await room.floor.follow_host_floor(session.floor)

    @staticmethod
    def _holder(room: Room, floor: dict[str, Any] | None) -> tuple[int, int, dt.datetime, int | None] | None | bool:
        """The node's floor holder as the record takes it (None: nobody); False when they are not in the room
        here (the record is left as it is: they are on their way in or out)."""
        if floor is None:
            return None
        person = next((p for p in room.participants.values() if p.person_id == floor["person_id"]), None)
        if person is None or person.grant.principal.office_id is None:
            return False
        granted = dt.datetime.fromtimestamp(float(floor["granted_at"]), dt.UTC)
        return person.person_id, person.grant.principal.office_id, granted, floor["limit_seconds"]

    async def event(self, room: Room, participant_id: str, event: str, data: dict[str, Any]) -> None:
        """A request of one of the node's own people in ``room``: a ballot in the session's vote, cast as
        theirs (the vote service checks that they may; a refusal goes back to their page), or yielding the
        floor they hold."""
        participant = room.participants.get(participant_id)
        if participant is None or participant.via is not self.link:
            raise PipeRefused("a node speaks only for its own people in the meeting")
        if event == "floor_yield":
            if room.floor.holds_floor(participant) and not room.floor.deferred:
                await room.floor.floor_action(participant, {"action": "yield"})
            return
        if event != "vote_cast":
            raise PipeRefused(f"a node's people do not {event!r} through the pipe")
        votes = self._services.votes
        try:
            checked = VOTE_SCHEMAS["vote_cast"].validate("vote_cast", data, MAX_VOTE_BYTES)
            vote = await votes.current(participant.caller, room.meeting_id)
            if vote is None or vote.id != checked["vote_id"]:
                raise Conflict("this vote is not open")
            vote = await votes.cast(participant.caller, vote.id, checked["choice"])
        except (MeetingsError, SignalingError) as exc:
            self.link.deliver(participant, "vote_refused", {"vote_id": data.get("vote_id"), "message": str(exc)})
            return
        await push_vote(room, votes, vote)

    async def departed(self, meeting_id: int, departures: dict[str, dt.datetime]) -> None:
        """Those of the node's people who left during a cut leave the centre's room as of then."""
        try:
            await self._services.nodes.node_meeting(self._node_id, meeting_id, address=self._address)
        except MeetingsError as exc:
            raise PipeRefused(str(exc)) from None
        room = self._rooms.rooms.get(meeting_id)
        if room is None:
            return
        carried = self._carried(room)
        for participant_id, at in departures.items():
            participant = carried.get(participant_id)
            if participant is not None:
                participant.gone_at = at
                await room.remove(participant, status="left")
        await self._rooms.discard_if_empty(room)

    def alive(self, room: Room) -> None:
        """Evidence of life for the node's people: a datagram of the pipe within the keep-alive period."""
        transport = self.link.transport if self.link is not None else None
        if transport is None or time.monotonic() - transport.last_received > ALIVE_WITHIN_SECONDS:
            return
        for participant in self._carried(room).values():
            if participant.via is self.link:
                participant.evidence.heard()


class CentrePipes:
    """Opens a pipe for each node that connects, and keeps a cut node's people for a grace period."""

    def __init__(self, services: Services, rooms: Rooms, *, bind_host: str,
                 grace_seconds: float = GRACE_SECONDS) -> None:
        self.services = services
        self.rooms = rooms
        self.bind_host = bind_host
        self.grace_seconds = grace_seconds
        self.links: dict[int, PipeLink] = {}
        #: The meetings whose session a node runs (its office hosts them), by meeting id: the node's id.
        self.hosted: dict[int, int] = {}
        #: When each node's last link was cut (cleared when its grace period ends).
        self.cut_at: dict[int, dt.datetime] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def open(self, node_id: int, office_id: int, via: str, address: str,
                   send_frame: SendFrame) -> tuple[PipeLink, dict[str, Any]]:
        """The pipe of a node's new connection, and what ``hello`` tells the node of it."""
        keys = new_keys()
        gate = CentreGate(self.services, self.rooms, node_id, address, cut_at=self.cut_at.get(node_id),
                          office_id=office_id, hosted=self.hosted)
        link = gate.link = PipeLink("centre", gate, send_frame, tag=f"node{node_id}-{secrets.token_hex(3)}",
                                     label=via)
        link.owner = node_id
        transport = await PipeTransport.open("centre", keys, link.pipe.handle_datagram, local=(self.bind_host, 0))
        link.start(transport)
        old = self.links.get(node_id)
        if old is not None:
            await old.close("parked")
        self.links[node_id] = link
        return link, {"port": transport.local_address[1], "keys": keys.to_dict()}

    async def close(self, node_id: int, link: PipeLink, *, cut: bool) -> None:
        """The node's connection ended: a ``cut`` (the WAN, not the node, ended it) leaves its people
        waiting for the grace period; otherwise they leave now."""
        await link.close("parked" if cut else "dropped")
        if self.links.get(node_id) is link:
            del self.links[node_id]
        if cut:  # as of the node's last sign of life: the channel's heartbeat noticed the cut later
            self.cut_at[node_id] = link.last_heard() or utcnow()
            task = asyncio.ensure_future(self._end_grace(link, self.cut_at[node_id]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """The server stops: every pipe closes (its people leave with the rooms), no grace is waited for."""
        for task in list(self._tasks):
            task.cancel()
        for node_id, link in list(self.links.items()):
            await self.close(node_id, link, cut=False)

    async def _end_grace(self, link: PipeLink, cut_at: dt.datetime) -> None:
        """People still waiting for ``link``'s node after the grace period leave, as of the cut."""
        await asyncio.sleep(self.grace_seconds)
        if link.owner is not None and self.cut_at.get(link.owner) == cut_at:
            del self.cut_at[link.owner]
        current = self.links.get(link.owner) if link.owner is not None else None
        for room in list(self.rooms.rooms.values()):
            for participant in [p for p in room.participants.values() if p.via is link]:
                participant.gone_at = cut_at
                await room.remove(participant, status="dropped")
            if self.hosted.get(room.meeting_id) == link.owner and (
                    current is None or room.meeting_id not in current.shares):
                del self.hosted[room.meeting_id]  # the node that ran it is not back: the centre runs it again
                await room.floor.resume_hosting()
            await self.rooms.discard_if_empty(room)
