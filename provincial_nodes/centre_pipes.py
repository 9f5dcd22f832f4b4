"""The centre's ends of the nodes' pipes: one :class:`~provincial_nodes.pipe_link.PipeLink` per
connected node, opened with its control channel (web/views/nodes.py) and closed with it.

Each connection gets new keys and its own UDP socket; ``hello`` tells the node the port and the keys.
What a node asks for is checked by :class:`CentreGate`: a meeting its office hosts or is invited to,
its own office's people who are invited (meetings/services/nodes.py); a forged request is refused,
counted as a refusal, and changes nothing. The rooms a node carries stay open while it does.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiohttp import web

from media.pipe_transport import PipeTransport, new_keys
from meetings.errors import MeetingsError
from meetings.services import Services
from signaling.room import Room
from signaling.server import Rooms

from .pipe_link import PipeLink, PipeRefused, SendFrame
from .roster import claimed_person, entry_at_centre

log = logging.getLogger("provincial_nodes.centre")

CENTRE_PIPES: web.AppKey[CentrePipes] = web.AppKey("centre_pipes")


class CentreGate:
    """What the centre checks of a node's pipe frames (see the module docstring)."""

    def __init__(self, services: Services, rooms: Rooms, node_id: int, via: str, address: str) -> None:
        self._services = services
        self._rooms = rooms
        self._node_id = node_id
        self._via = via
        self._address = address
        self.link: PipeLink | None = None

    async def room(self, meeting_id: int) -> Room | None:
        try:
            meeting = await self._services.nodes.node_meeting(self._node_id, meeting_id, address=self._address)
        except MeetingsError as exc:
            raise PipeRefused(str(exc)) from None
        room = await self._rooms.open_for_pipe(meeting)
        room.holds.add(self.link)
        return room

    async def people(self, room: Room, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        claimed = [claimed_person(e) for e in entries]
        meeting = await self._services.nodes.node_meeting(self._node_id, room.meeting_id, address=self._address)
        try:
            people = await self._services.nodes.node_people(self._node_id, meeting, [p for _, p in claimed],
                                                            address=self._address)
        except MeetingsError as exc:
            raise PipeRefused(str(exc)) from None
        for participant_id, _ in claimed:
            if participant_id in room.participants or room.remote_via(participant_id) not in (None, self.link):
                raise PipeRefused(f"participant {participant_id} is already in the meeting")
        return [entry_at_centre(e, people[p], self._via) for e, (_, p) in zip(entries, claimed, strict=True)]

    async def release(self, room: Room) -> None:
        room.holds.discard(self.link)
        await self._rooms.discard_if_empty(room)


class CentrePipes:
    """Opens a pipe for each node that connects."""

    def __init__(self, services: Services, rooms: Rooms, *, bind_host: str) -> None:
        self.services = services
        self.rooms = rooms
        self.bind_host = bind_host
        self.links: dict[int, PipeLink] = {}

    async def open(self, node_id: int, via: str, address: str, send_frame: SendFrame) -> tuple[PipeLink, dict[str, Any]]:
        """The pipe of a node's new connection, and what ``hello`` tells the node of it."""
        keys = new_keys()
        gate = CentreGate(self.services, self.rooms, node_id, via, address)
        link = gate.link = PipeLink("centre", gate, send_frame, tag=f"node{node_id}-{secrets.token_hex(3)}")
        transport = await PipeTransport.open("centre", keys, link.pipe.handle_datagram, local=(self.bind_host, 0))
        link.start(transport)
        old = self.links.get(node_id)
        if old is not None:
            await old.close()
        self.links[node_id] = link
        return link, {"port": transport.local_address[1], "keys": keys.to_dict()}

    async def close(self, node_id: int, link: PipeLink) -> None:
        await link.close()
        if self.links.get(node_id) is link:
            del self.links[node_id]
