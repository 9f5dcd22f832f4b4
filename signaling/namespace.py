"""The socket.io namespace: authentication at connect, then validated, rate-limited events."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import socketio

from media import MediaError
from meetings.errors import MeetingsError, TokenInvalid
from signaling.errors import InvalidMessage, RateLimited, SignalingError, WrongState
from signaling.floor import FloorHandlers
from signaling.liveness import Evidence, end_of_drop
from signaling.participant import Participant, new_participant_id
from signaling.protocol import CLIENT_EVENTS, DEFAULT_AUDIO_SLOTS, DEFAULT_VIDEO_SLOTS
from signaling.ratelimit import FloodRule, Verdict
from signaling.refusals import note_refused_connect, note_refused_event
from signaling.votes import VoteHandlers

if TYPE_CHECKING:
    from meetings.services.meetings import JoinGrant
    from signaling.room import Room
    from signaling.server import Signaling

log = logging.getLogger("signaling")

#: Event names only python-socketio may deliver; a client's event of that name is refused as unknown.
RESERVED_EVENTS = frozenset({"connect", "disconnect"})


@dataclass
class Connection:
    """Per-connection state, kept in the socket.io session."""

    grant: JoinGrant
    flood: FloodRule
    address: str = ""
    participant: Participant | None = None
    room: Room | None = None
    connected_at: float = field(default_factory=time.time)
    #: Evidence of life: every engine.io packet and every event (signaling/liveness.py).
    evidence: Evidence = field(default_factory=Evidence)


class MeetingNamespace(VoteHandlers, FloorHandlers, socketio.AsyncNamespace):
    def __init__(self, signaling: Signaling) -> None:
        super().__init__("/")
        self.signaling = signaling
        self.schemas = signaling.schemas

    # -- connect / disconnect ---------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        address = self.signaling.client_address(environ)
        try:
            grant = await self.signaling.services.meetings.verify_join_token(token)
            self.signaling.tokens.use(grant.claims.token_id, grant.claims.expires_at)
        except TokenInvalid as exc:
            log.info("signaling connection refused", extra={"event": "signaling.refused", "reason": exc.message,
                                                            "address": address})
            note_refused_connect(self.signaling.services, token, address)
            raise socketio.exceptions.ConnectionRefusedError(exc.message, {"code": "token_invalid"}) from None
        config = self.signaling.config
        connection = Connection(grant=grant, address=address,
                                flood=FloodRule(config.rate_per_second, config.rate_burst,
                                                config.flood_disconnect_after),
                                evidence=Evidence(config.ping_interval_seconds + 2.0))
        await self.save_session(sid, {"connection": connection})
        self.signaling.watch(sid, connection.evidence)
        log.info("signaling connected", extra={"event": "signaling.connected", "meeting_id": grant.meeting.meeting_id,
                                               "person_id": grant.principal.person_id, "address": address})

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        connection = await self._connection(sid)
        if connection is not None and connection.participant is not None and connection.room is not None:
            participant, room = connection.participant, connection.room
            connection.participant = connection.room = None
            if not self.signaling.stopping and participant.gone_at is None:
                participant.gone_at = end_of_drop(participant)  # silent for a while: ends at the last sign
            await room.remove(participant, status="restart" if self.signaling.stopping else "dropped")
            log.info("participant dropped", extra={"event": "signaling.dropped", "meeting_id": room.meeting_id,
                                                   "participant_id": participant.id, "reason": str(reason)})

    async def _connection(self, sid: str) -> Connection | None:
        try:
            session = await self.get_session(sid)
        except KeyError:
            return None
        return session.get("connection")  # type: ignore[no-any-return]

    # -- dispatch ---------------------------------------------------------------------------
    async def trigger_event(self, event: Any, *args: Any) -> Any:
        # ``event`` is whatever JSON value the client put first: a list or an object is not even hashable.
        if isinstance(event, str) and event in RESERVED_EVENTS and await self._from_the_library(event, args[0]):
            return await super().trigger_event(event, *args)
        sid = args[0]
        data = args[1] if len(args) > 1 else None
        connection = await self._connection(sid)
        if connection is None:
            return WrongState("not connected").ack()
        connection.evidence.heard()
        try:
            verdict = connection.flood.check()
            if verdict is Verdict.DISCONNECT:
                await self._disconnect_flooding(sid, connection)
            if verdict is not Verdict.ACCEPT:
                raise RateLimited("too many messages; slow down")
            if not isinstance(event, str):
                raise InvalidMessage("the event name must be a string")
            if event in RESERVED_EVENTS:
                log.warning("a client emitted a reserved event", extra={
                    "event": "signaling.reserved_event", "signal": event, "address": connection.address,
                    "person_id": connection.grant.principal.person_id})
            if event not in CLIENT_EVENTS or len(args) > 3:
                raise InvalidMessage(f"unknown event {str(event)[:40]!r}")
            payload = self.schemas[event].validate(event, data, self.signaling.config.max_message_bytes)
            handler = getattr(self, f"handle_{event}")
            result = await handler(sid, connection, payload)
            return {"ok": True, **(result or {})}
        except SignalingError as exc:
            note_refused_event(self.signaling.services, connection, event, exc)
            return exc.ack()
        except MeetingsError as exc:
            note_refused_event(self.signaling.services, connection, event, exc)
            return {"ok": False, "error": {"code": exc.code, "message": exc.message}}
        except MediaError as exc:
            return {"ok": False, "error": {"code": "media_error", "message": str(exc)}}
        except Exception:
            log.exception("signaling handler failed", extra={"event": "signaling.error", "signal": event})
            return {"ok": False, "error": {"code": "internal", "message": "internal error; it has been logged"}}

    async def _disconnect_flooding(self, sid: str, connection: Connection) -> None:
        """Tell the client why, then close it once this message's ``rate_limited`` answer has gone out."""
        log.warning("disconnecting a flooding client", extra={
            "event": "signaling.flood", "person_id": connection.grant.principal.person_id,
            "address": connection.address, "refused": connection.flood.bucket.refused_in_a_row})
        await self.emit("closing", {"code": "flooding", "message": "too many messages after being told to slow "
                                    "down; the server closed this connection"}, to=sid)
        self.signaling.spawn_disconnect(sid)

    async def _from_the_library(self, event: str, sid: str) -> bool:
        """Whether a ``connect``/``disconnect`` comes from python-socketio itself, not from a client that
        emitted an event of that name (which would forge an environ, or a departure while staying).

        The library calls ``connect`` before this connection has any state, and ``disconnect`` after it
        has marked the socket as disconnecting; a client's event arrives only on a live, accepted socket.
        """
        if event == "connect":
            return await self._connection(sid) is None
        return not self.server.manager.is_connected(sid, self.namespace)

    def _joined(self, connection: Connection, *, lobby_ok: bool = False) -> tuple[Participant, Room]:
        if connection.participant is None or connection.room is None:
            raise WrongState("join first")
        if connection.participant.in_lobby and not lobby_ok:
            raise WrongState("you are waiting in the lobby", code="in_lobby")
        return connection.participant, connection.room

    # -- events -----------------------------------------------------------------------------
    async def handle_join(self, sid: str, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        if connection.participant is not None:
            raise WrongState("already joined")
        grant = connection.grant
        participant = Participant(id=new_participant_id(grant.principal.person_id), sid=sid, grant=grant,
                                  address=connection.address, client=payload.get("client", "room"),
                                  evidence=connection.evidence)
        room = await self.signaling.rooms.get_or_create(participant)
        try:
            joined = await room.join(participant)
        except SignalingError:
            await self.signaling.rooms.discard_if_empty(room)
            raise
        connection.participant, connection.room = participant, room
        await self.enter_room(sid, room.name)
        self.signaling.liveness.ensure_running()
        if "last_n" in payload:
            room.set_last_n(participant, payload["last_n"])
        if "quality" in payload:
            room.links.set_mode(participant, payload["quality"])
        log.info("participant joined", extra={"event": "signaling.joined", "meeting_id": room.meeting_id,
                                              "participant_id": participant.id, "lobby": joined["lobby"]})
        return joined

    async def handle_publish(self, sid: str, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        return await room.publish(participant, payload["sdp"])

    async def handle_subscribe(self, sid: str, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        return await room.subscribe(participant, payload.get("videos", DEFAULT_VIDEO_SLOTS),
                                    payload.get("audios", DEFAULT_AUDIO_SLOTS))

    async def handle_answer(self, sid: str, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        return await room.answer(participant, payload["sdp"], payload["revision"])

    async def handle_mute(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection)
        await room.set_muted(participant, payload["kind"], payload["muted"])

    async def handle_set_last_n(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection)
        room.set_last_n(participant, payload["n"])

    async def handle_set_quality(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection)
        room.links.set_mode(participant, payload["mode"])

    async def handle_set_view(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection)
        room.links.set_view(participant, payload["slots"])

    async def handle_pin(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection)
        room.pin(participant, payload["participant_id"])

    async def handle_restart(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection)
        await room.restart(participant, payload["transport"])

    async def handle_leave(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection, lobby_ok=True)
        connection.participant = connection.room = None
        await room.remove(participant, status="left")
        await self.leave_room(sid, room.name)
        self.signaling.spawn_disconnect(sid)

    async def handle_ping(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        return None

    async def handle_raise_hand(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection)
        await room.moderation.raise_hand(participant, True)

    async def handle_lower_hand(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection)
        await room.moderation.raise_hand(participant, False)

    async def handle_stats(self, sid: str, connection: Connection, payload: dict[str, Any]) -> None:
        participant, room = self._joined(connection)
        await room.moderation.report_stats(participant, payload)

    async def handle_moderate(self, sid: str, connection: Connection, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        return await room.moderation.moderate(participant, payload)

    async def handle_set_agenda_item(self, sid: str, connection: Connection,
                                     payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        return await room.moderation.set_agenda_item(participant, payload["item_id"])
