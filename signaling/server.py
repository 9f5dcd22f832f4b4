"""The signaling server: a python-socketio AsyncServer on the aiohttp app, and the live rooms."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import socketio
from aiohttp import web

from media.config import MediaConfig
from meetings.errors import TokenInvalid
from meetings.models import Meeting, MeetingState
from meetings.services import Services
from signaling.config import SignalingConfig
from signaling.liveness import Evidence, LivenessSweep, watch_engineio
from signaling.namespace import MeetingNamespace
from signaling.participant import Participant
from signaling.protocol import schemas
from meetings.services.live import Sanctions, agenda_payload
from signaling.room import Room

SOCKETIO_PATH = "socket.io"
RESTARTING = {"code": "restarting", "message": "The server is restarting; this page reconnects by itself."}
log = logging.getLogger("signaling.server")


class UsedTokens:
    """Join tokens are single-use: a leaked token cannot open a second connection."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def use(self, token_id: str, expires_at: int) -> None:
        now = time.time()
        if len(self._used) > 1000:
            self._used = {k: v for k, v in self._used.items() if v > now}
        if token_id in self._used:
            raise TokenInvalid("this join token has already been used")
        self._used[token_id] = expires_at


class RoomListener(Protocol):
    def room_opened(self, room: Room) -> None: ...

    def room_closed(self, room: Room) -> None: ...


class Rooms:
    """The live rooms of this process, one per meeting with someone in it."""

    def __init__(self, signaling: Signaling, outbox: SocketOutbox) -> None:
        self.signaling = signaling
        self.outbox = outbox
        self.rooms: dict[int, Room] = {}
        self._lock = asyncio.Lock()
        #: Told of every room opened and closed (a provincial node's pipe carries its rooms).
        self.listeners: list[RoomListener] = []

    async def get_or_create(self, participant: Participant) -> Room:
        """The room of the participant's meeting, created from the meeting's stored state if needed."""
        services, caller = self.signaling.services, participant.caller
        meeting_id = participant.grant.meeting.meeting_id

        async def load() -> tuple[Meeting, Sanctions]:
            return await services.meetings.get(caller, meeting_id), await services.live.sanctions(caller, meeting_id)

        return await self._get_or_create(meeting_id, load)

    async def open_for_pipe(self, meeting: Meeting) -> Room:
        """The room of a meeting a provincial node's pipe carries (the node's office was checked for it)."""
        services = self.signaling.services

        async def load() -> tuple[Meeting, Sanctions]:
            return meeting, await services.live.room_sanctions(meeting.id)

        return await self._get_or_create(meeting.id, load)

    async def _get_or_create(self, meeting_id: int,
                             load: Callable[[], Awaitable[tuple[Meeting, Sanctions]]]) -> Room:
        async with self._lock:
            room = self.rooms.get(meeting_id)
            if room is None:
                meeting, sanctions = await load()
                services = self.signaling.services
                room = Room(meeting_id, self.signaling.media_config, self.outbox, self._closed,
                            services=services, ice_servers=self.signaling.ice_servers(),
                            locked=meeting.locked, lobby_enabled=meeting.lobby_enabled,
                            agenda=agenda_payload(meeting), sanctions=sanctions,
                            archive_root=self.signaling.archive_root, host_office_id=meeting.host_office_id)
                await room.floor.restore(meeting)
                self.rooms[meeting_id] = room
                if meeting.state is MeetingState.OPEN:  # the server restarted during the session
                    await room.recording.start()
                for listener in list(self.listeners):
                    listener.room_opened(room)
            return room

    async def discard_if_empty(self, room: Room) -> None:
        if not room.participants and not room.moderation.lobby and not room.holds:
            await self._closed(room)

    async def _closed(self, room: Room) -> None:
        if self.rooms.get(room.meeting_id) is room:
            del self.rooms[room.meeting_id]
        for listener in list(self.listeners):
            listener.room_closed(room)
        await room.close()

    async def close(self) -> None:
        for room in list(self.rooms.values()):
            await self._closed(room)


class SocketOutbox:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def to(self, participant: Participant, event: str, data: dict[str, Any]) -> None:
        if participant.via is not None:  # behind a pipe: no socket here (and never sid "", which is everyone)
            participant.via.deliver(participant, event, data)
            return
        await self.sio.emit(event, data, to=participant.sid)

    async def broadcast(self, room: Room, event: str, data: dict[str, Any], skip: Participant | None = None) -> None:
        await self.sio.emit(event, data, room=room.name, skip_sid=skip.sid if skip and skip.via is None else None)

    async def disconnect(self, participant: Participant) -> None:
        if participant.via is not None:
            participant.via.drop(participant)
            return
        await self.sio.disconnect(participant.sid)


class Signaling:
    def __init__(self, services: Services, config: SignalingConfig, media_config: MediaConfig, *,
                 archive_root: Path | None = None) -> None:
        self.services = services
        #: Where sessions are recorded (None: not recorded, e.g. tests of signaling alone).
        self.archive_root = archive_root
        self.config = config
        self.media_config = media_config
        self.schemas = schemas(config.max_message_bytes)
        self.tokens = UsedTokens()
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            max_http_buffer_size=config.max_message_bytes,
            cors_allowed_origins=None,  # same origin only; bots send no Origin
            # Logger objects, not False: with False each library hangs its own StreamHandler on its logger,
            # which writes raw tracebacks to stderr past the JSON formatter and its secret scrubber.
            logger=logging.getLogger("socketio.server"),
            engineio_logger=logging.getLogger("engineio.server"),
            # Every pong is evidence of life (signaling/liveness.py); the defaults (25 + 20 s) noticed a
            # silent link after up to 45 s and credited that as presence.
            ping_interval=config.ping_interval_seconds,
            ping_timeout=config.ping_timeout_seconds,
        )
        self.rooms = Rooms(self, SocketOutbox(self.sio))
        self.sio.register_namespace(MeetingNamespace(self))
        self._tasks: set[asyncio.Task[Any]] = set()
        #: A planned stop is under way: departures are "restart", not "dropped".
        self.stopping = False
        self.liveness = LivenessSweep(config.dead_after_seconds, lambda: list(self.rooms.rooms.values()),
                                      self._silent)

    def attach(self, app: web.Application) -> None:
        self.sio.attach(app, socketio_path=SOCKETIO_PATH)

        async def close(_app: web.Application) -> None:
            await self.stop()

        app.on_shutdown.append(close)

    async def stop(self, budget_seconds: float = 3.0) -> None:
        """A planned stop: tell every page the server is restarting (they reconnect by themselves), end
        every attendance interval now with the reason ``restart`` and write it, close every socket.

        Without closing the sockets aiohttp waits for them for its whole shutdown timeout, and their
        intervals were later closed as "dropped", crediting the shutdown as presence.
        """
        self.stopping = True
        self.liveness.stop()
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._close_connections(), budget_seconds)
        except TimeoutError:
            log.warning("planned stop: connections still closing after the budget", extra={
                "event": "signaling.stop_slow", "budget_seconds": budget_seconds})
        await self.rooms.close()
        await self.sio.shutdown()
        log.info("signaling stopped", extra={"event": "signaling.stopped",
                                             "seconds": round(time.monotonic() - started, 3)})

    async def _close_connections(self) -> None:
        sids = [sid for sid, _eio in self.sio.manager.get_participants("/", None)]
        await asyncio.gather(*(self.sio.emit("closing", RESTARTING, to=sid) for sid in sids), return_exceptions=True)
        # Each namespace disconnect runs on_disconnect, which ends the participant's interval as "restart".
        await asyncio.gather(*(self.sio.disconnect(sid) for sid in sids), return_exceptions=True)
        if self.sio.eio.sockets:  # and the transports, so no request handler is left waiting
            await self.sio.eio.disconnect()

    def ice_servers(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for url in self.media_config.ice_servers:
            entry: dict[str, Any] = {"urls": url}
            if url.startswith("turn") and self.media_config.turn_username:
                entry.update(username=self.media_config.turn_username, credential=self.media_config.turn_credential)
            out.append(entry)
        return out

    def client_address(self, environ: dict[str, Any]) -> str:
        request = environ.get("aiohttp.request")
        remote = getattr(request, "remote", None) or environ.get("REMOTE_ADDR", "")
        return str(remote)[:64]

    def watch(self, sid: str, evidence: Evidence) -> None:
        """Count the engine.io packets of a new connection (pongs included) as its evidence of life."""
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        watch_engineio(self.sio.eio.sockets.get(eio_sid) if eio_sid else None, evidence)

    async def _silent(self, room: Room, participant: Participant) -> None:
        """The liveness sweep found a participant silent (``gone_at`` set): out of the room as "dropped",
        then the transport is closed as if the link had died, so the client, if it ever hears of it,
        reconnects as after any lost connection (not as after being sent away)."""
        try:
            session = await self.sio.get_session(participant.sid)
        except KeyError:
            session = {}
        connection = session.get("connection")
        if connection is not None and connection.participant is participant:
            connection.participant = connection.room = None
        await room.remove(participant, status="dropped")
        eio_sid = self.sio.manager.eio_sid_from_sid(participant.sid, "/")
        if eio_sid is not None:
            task = asyncio.ensure_future(self.sio.eio.disconnect(eio_sid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def spawn_disconnect(self, sid: str) -> None:
        task = asyncio.ensure_future(self.sio.disconnect(sid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
