"""The node's end of its pipe: opened when the control channel comes up (``hello`` gives the centre's
port and this connection's keys), closed when it goes down; it offers the centre every local room.
A room of a meeting another office hosts defers its floor to the host (signaling/floor.py
``defer_to_host``): the centre gates what the session hears of the node's people.

While the pipe is down the node's rooms go on with their local people; the centre's people and tracks
leave them, and come back with the next connection's tables.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from media.pipe_transport import PipeKeys, PipeTransport, PipeTransportError
from meetings.errors import MeetingsError
from signaling.room import Room
from signaling.server import Rooms

from .pipe_frames import HostSession, PipeRefused, departures_frame
from .pipe_link import RELAYED_EVENTS, PipeLink, SendFrame
from .replica_meetings import follow_session
from .roster import checked_entry

log = logging.getLogger("provincial_nodes.node_pipe")

#: Without a datagram from the centre this long after the pipe opens, UDP is taken to be blocked.
UDP_PROBE_SECONDS = 3.0
#: Departures told to the centre at a reconnection: those of the centre's grace period, with room to spare.
DEPARTURES_TOLD_SECONDS = 600.0


class NodeGate:
    """A node takes the centre's tables for the rooms it has, once their shape is checked: the centre's
    people are roster entries of its rooms (they have no connection here), the centre's removal of one
    of the node's people takes them out here too."""

    def __init__(self, rooms: Rooms) -> None:
        self._rooms = rooms
        self.link: PipeLink | None = None

    async def room(self, meeting_id: int) -> Room | None:
        return self._rooms.rooms.get(meeting_id)

    async def people(self, room: Room, entries: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        checked = [checked_entry(e) for e in entries if e.get("participant_id") not in room.participants]
        await room.set_remote(self.link, checked)
        return {e["participant_id"] for e in checked}, set()

    async def release(self, room: Room, status: str) -> None:
        await room.set_remote(self.link, [])

    async def follow(self, room: Room, session: HostSession) -> None:
        """The host's session state in the centre's table: a room that defers to the host follows it (this
        node's copy of the meeting first, then the room: its pages, its recording of the local tracks), and
        its pages show who holds the host's floor."""
        if not room.floor.deferred:
            return
        state = session.state
        if state is not room.floor.state:
            try:
                await follow_session(room.floor.services.db, room.meeting_id, state, session.opened_at,
                                     session.closed_at)
                followed = await room.floor.follow_host(state, session.opened_at, session.closed_at)
            except MeetingsError as exc:  # a full disk, a busy database: the next table tries again
                log.warning("could not follow the host's session: %s", exc, extra={
                    "event": "node.session_follow_failed", "meeting_id": room.meeting_id})
                return
            if followed:
                log.info("the host's session is %s", state.value, extra={
                    "event": "node.session_followed", "meeting_id": room.meeting_id, "state": state.value})
        await room.floor.follow_host_floor(session.floor)

    async def event(self, room: Room, participant_id: str, event: str, data: dict[str, Any]) -> None:
        if event == "floor_yield":  # someone at the centre yields the floor this node's room gave them
            await room.floor.yield_remote(participant_id)
            return
        participant = room.participants.get(participant_id)
        if participant is None or event not in RELAYED_EVENTS:
            return
        if event == "vote":  # the host's vote, as it is now: their page shows it
            if (participant.host_vote or {}).get("id") != data.get("id"):
                participant.host_vote_choice = None
            participant.host_vote = data
            await room.outbox.to(participant, "vote", data)
        elif event == "vote_refused":  # the host did not take their ballot
            participant.host_vote_choice = None
            await room.outbox.to(participant, "vote_refused", {"vote_id": data.get("vote_id"),
                                                               "message": str(data.get("message", ""))[:300]})
        elif event == "removed":  # a moderator of the meeting's host removed them: out of the local room too
            log.info("the centre removed a participant", extra={"event": "node.removed_by_centre",
                                                                "participant_id": participant_id})
            await room.outbox.to(participant, "removed", {"reason": str(data.get("reason", ""))[:200]})
            await room.remove(participant, status="removed")
            await room.outbox.disconnect(participant)

    def alive(self, room: Room) -> None:
        return None

    async def departed(self, meeting_id: int, departures: dict[str, dt.datetime]) -> None:
        raise PipeRefused("the centre tells a node nobody's departures")


class NodePipes:
    """Follows the control channel (provincial_nodes/control.py ``ChannelListener``) and the rooms."""

    def __init__(self, rooms: Rooms, upstream_host: str, *, downlink_kbps: int = 0, uplink_kbps: int = 0) -> None:
        self.rooms = rooms
        self.upstream_host = upstream_host
        #: The node's configured link (kbit/s, 0: no cap): the centre is told the downlink, what the node
        #: sends fits the uplink (config.py ``[provincial_nodes]``).
        self.downlink_kbps = downlink_kbps
        self.uplink_kbps = uplink_kbps
        self.link: PipeLink | None = None
        #: This node's office (from the centre's snapshot): meetings other offices host defer to them.
        self.office_id: int | None = None
        self.opened = 0
        #: Departures from rooms that closed (their last people left), by meeting: told at the next link.
        self._closed_departures: dict[int, dict[str, dt.datetime]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        rooms.listeners.append(self)

    async def channel_up(self, hello: dict[str, Any], send: SendFrame,
                         send_bytes: Callable[[bytes], Awaitable[None]]) -> None:
        await self.channel_down()
        pipe = hello.get("pipe")
        if not isinstance(pipe, dict):
            log.warning("the centre offers no media pipe", extra={"event": "node.no_pipe"})
            return
        port = pipe.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            log.warning("the centre's pipe port is not a port: %r", port, extra={"event": "node.bad_pipe"})
            return
        try:
            keys = PipeKeys.from_dict(pipe.get("keys"))
            infos = await asyncio.get_running_loop().getaddrinfo(self.upstream_host, port, type=socket.SOCK_DGRAM,
                                                                 family=socket.AF_INET)
        except (PipeTransportError, OSError) as exc:
            log.warning("cannot open the media pipe: %s", exc, extra={"event": "node.bad_pipe"})
            return
        gate = NodeGate(self.rooms)
        link = gate.link = PipeLink("node", gate, send, tag="centre", label="centre")
        transport = await PipeTransport.open("node", keys, link.pipe.handle_datagram, remote=infos[0][4][:2])
        link.pipe.sender.set_cap(self.uplink_kbps)
        link.start(transport)
        self.link = link
        await send({"type": "pipe_link", "downlink_kbps": self.downlink_kbps})
        self.opened += 1
        self._spawn(self._probe_udp(link, send, send_bytes))
        await self._tell_departures(link, send)
        for room in list(self.rooms.rooms.values()):
            link.share(room)
            if room.floor.deferred:
                room.to_host = link.relay_up
        log.info("media pipe up", extra={"event": "node.pipe_up", "port": port})

    async def _probe_udp(self, link: PipeLink, send: SendFrame, send_bytes: Callable[[bytes], Awaitable[None]]) -> None:
        """No answer over UDP to the first keep-alives: the packets ride the control channel instead."""
        await asyncio.sleep(UDP_PROBE_SECONDS)
        transport = link.transport
        if self.link is not link or transport is None or transport.last_received:
            return
        log.warning("no UDP from the centre within %.0f s: the media pipe rides the control channel",
                    UDP_PROBE_SECONDS, extra={"event": "node.pipe_stream"})
        await send({"type": "pipe_stream"})
        link.ride_stream(send_bytes)

    async def _tell_departures(self, link: PipeLink, send: SendFrame) -> None:
        """Before any table: who left which meeting lately (during a cut, the centre still holds them)."""
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=DEPARTURES_TOLD_SECONDS)
        by_meeting = {meeting_id: dict(departures) for meeting_id, departures in self._closed_departures.items()}
        for room in self.rooms.rooms.values():
            by_meeting.setdefault(room.meeting_id, {}).update(room.departures)
        self._closed_departures.clear()
        for meeting_id, departures in by_meeting.items():
            recent = {pid: at for pid, at in departures.items() if at >= since}
            if recent:
                await send(departures_frame(meeting_id, recent))

    def channel_bytes(self, data: bytes) -> None:
        if self.link is not None and self.link.transport is not None:
            self.link.transport.stream_received(data)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def channel_frame(self, frame: dict[str, Any]) -> None:
        if self.link is not None:
            await self.link.handle_frame(frame)

    async def channel_down(self) -> None:
        link, self.link = self.link, None
        for room in self.rooms.rooms.values():
            room.to_host = None
        if link is not None:
            await link.close()
            log.info("media pipe down", extra={"event": "node.pipe_down"})

    def channel_rtt(self, rtt_ms: float) -> None:
        if self.link is not None:
            self.link.pipe.receiver.set_rtt(rtt_ms)

    def room_opened(self, room: Room) -> None:
        if self.office_id is None or room.host_office_id != self.office_id:
            room.floor.defer_to_host()
        if self.link is not None:
            self.link.share(room)
            if room.floor.deferred:
                room.to_host = self.link.relay_up

    def room_closed(self, room: Room) -> None:
        if room.departures:
            self._closed_departures.setdefault(room.meeting_id, {}).update(room.departures)
        if self.link is not None:
            self._spawn(self.link.unshare(room.meeting_id))
