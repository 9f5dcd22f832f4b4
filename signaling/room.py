"""A meeting's live room: its media Router and the connected participants.

The room turns participants' requests into calls on the SFU's control API and the Router's events
into messages for the participants. It knows nothing of socket.io: it sends through ``Outbox``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from media import MediaError, Producer, Router, WebRtcTransport
from media.config import MediaConfig
from meetings.services import Services
from meetings.services.live import Sanctions
from signaling.errors import Forbidden, InvalidMessage, NegotiationFailed, WrongState
from signaling.floor import SessionControl
from signaling.moderation import Moderation
from signaling.participant import Participant
from signaling.validation import media_count

log = logging.getLogger("signaling.room")


class Outbox(Protocol):
    """How the room reaches clients: one participant, or everyone (optionally but one)."""

    async def to(self, participant: Participant, event: str, data: dict[str, Any]) -> None: ...

    async def broadcast(self, room: Room, event: str, data: dict[str, Any],
                        skip: Participant | None = None) -> None: ...

    async def disconnect(self, participant: Participant) -> None: ...


def track_info(producer: Producer) -> dict[str, Any]:
    return {"producer_id": producer.id, "participant_id": producer.participant_id, "kind": producer.kind,
            "muted": producer.paused}


class Room:
    def __init__(self, meeting_id: int, config: MediaConfig, outbox: Outbox,
                 on_empty: Callable[[Room], Awaitable[None]], *, services: Services,
                 ice_servers: list[dict[str, Any]], locked: bool = False, lobby_enabled: bool = False,
                 agenda: dict[str, Any] | None = None, sanctions: Sanctions | None = None) -> None:
        self.meeting_id = meeting_id
        self.router = Router(config, router_id=f"meeting-{meeting_id}")
        self.outbox = outbox
        self.participants: dict[str, Participant] = {}
        self.ice_servers = ice_servers
        self.moderation = Moderation(self, services, locked=locked, lobby_enabled=lobby_enabled,
                                     agenda=agenda or {"items": [], "current_item_id": None},
                                     sanctions=sanctions or Sanctions())
        self.floor = SessionControl(self, services)
        self._on_empty = on_empty
        self._tasks: set[asyncio.Task[Any]] = set()
        self.router.on("producer_added", self._on_producer_added)
        self.router.on("producer_closed", self._on_producer_closed)
        self.router.on("dominant_speaker_changed", self._on_dominant_speaker)
        self.router.on("last_n_changed", self._on_last_n)

    @property
    def name(self) -> str:
        return f"meeting:{self.meeting_id}"

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("room task failed", exc_info=task.exception(),
                      extra={"event": "room.task_failed", "meeting_id": self.meeting_id})

    # -- membership -------------------------------------------------------------------------
    async def join(self, participant: Participant) -> dict[str, Any]:
        """Let a participant in, or into the lobby; raises Forbidden when locked or removed."""
        if self.moderation.admission(participant) == "lobby":
            await self.moderation.wait_in_lobby(participant)
            return {"lobby": True, "participant_id": participant.id, "meeting": self._meeting(participant),
                    "me": participant.public()}
        return await self.add(participant)

    def _meeting(self, participant: Participant) -> dict[str, Any]:
        grant = participant.grant
        return {"id": self.meeting_id, "title": grant.meeting_title, "kind": grant.meeting.kind.value}

    async def add(self, participant: Participant) -> dict[str, Any]:
        # One connection per person and client: a rejoin (after a drop the server has not noticed yet)
        # replaces it, while the secretariat's console and their meeting page live side by side.
        for stale in [p for p in self.participants.values()
                      if p.person_id == participant.person_id and p.client == participant.client]:
            await self.remove(stale, status="replaced")
            await self.outbox.disconnect(stale)
        participant.force_muted = participant.person_id in self.moderation.force_muted
        self.participants[participant.id] = participant
        await self.floor.on_joined(participant)
        self._update_pins()
        await self.outbox.broadcast(self, "participant_joined", participant.public(), skip=participant)
        await self.moderation.set_presence(participant, "joined")
        return {
            "lobby": False,
            "participant_id": participant.id,
            "meeting": self._meeting(participant),
            "me": participant.public(),
            "permissions": {"publish": participant.may_publish, "moderate": participant.may_moderate},
            "ice_servers": self.ice_servers,
            "roster": [p.public() for p in self.participants.values()],
            "tracks": [track_info(p) for p in self.router.producers.values()],
            "dominant_speaker": self.router.dominant_speaker,
            "hands": self.moderation.hands(),
            "agenda": self.moderation.agenda,
            "room_state": self.moderation.state(),
            **self.floor.join_payload(participant),
        }

    async def remove(self, participant: Participant, status: str = "left") -> None:
        """Take a participant out (status: left, dropped or removed), closing their connections."""
        if participant.in_lobby:
            await self.moderation.leave_lobby(participant)
            await self.moderation.set_presence(participant, status)
            await self._close_if_empty()
            return
        if self.participants.pop(participant.id, None) is None:
            return
        for transport in (participant.send, participant.recv):
            if transport is not None:
                await transport.close()
        participant.send = participant.recv = None
        self.router.set_last_n(participant.id, None)
        await self.floor.on_left(participant, status)
        self._update_pins()
        await self.outbox.broadcast(self, "participant_left", {"participant_id": participant.id, "status": status})
        if participant.hand_raised_at is not None:
            participant.hand_raised_at = None
            await self.outbox.broadcast(self, "hands", {"queue": self.moderation.hands()})
        await self.moderation.set_presence(participant, status)
        await self._close_if_empty()

    async def _close_if_empty(self) -> None:
        if not self.participants and not self.moderation.lobby:
            await self._on_empty(self)

    async def close(self) -> None:
        await self.floor.close()
        await self.router.close()
        for task in list(self._tasks):
            task.cancel()

    def _update_pins(self) -> None:
        self.router.set_pinned(p.id for p in self.participants.values() if p.is_chair or self.floor.holds_floor(p))

    update_pins = _update_pins

    # -- publishing -------------------------------------------------------------------------
    async def publish(self, participant: Participant, sdp: str) -> dict[str, Any]:
        if not participant.may_publish:
            raise Forbidden("you may watch and listen, not publish")
        if participant.send is None:
            participant.send = self._transport(participant, "send")
        try:
            answer = await participant.send.accept_offer(sdp)
        except MediaError as exc:
            raise NegotiationFailed(str(exc)) from None
        produced = {p.mid for p in participant.send.producers.values()}
        for track in participant.send.offered_tracks():
            if track.mid in produced:
                continue
            producer = participant.send.produce(track.mid)
            participant.producers[producer.id] = producer
            muted = participant.audio_muted if producer.kind == "audio" else participant.video_muted
            if muted:
                producer.pause()
            if producer.kind == "audio" and participant.force_muted:
                self.router.set_producer_muted(producer.id, True)
            producer.on("close", lambda p=producer: participant.producers.pop(p.id, None))
        return {"sdp": answer, "producers": [{"producer_id": p.id, "kind": p.kind, "mid": p.mid}
                                              for p in participant.send.producers.values()]}

    def _transport(self, participant: Participant, direction: str) -> WebRtcTransport:
        transport = self.router.create_transport(participant.id, direction)  # type: ignore[arg-type]

        def on_state(state: str) -> None:
            if state in ("failed", "closed") and transport in (participant.send, participant.recv):
                self._spawn(self.outbox.to(participant, "transport_state",
                                           {"transport": direction, "state": state}))

        transport.on("connectionstatechange", on_state)
        if direction == "recv":
            transport.on("negotiationneeded", lambda: self._spawn(self.negotiate(participant)))
        return transport

    def _on_producer_added(self, producer: Producer) -> None:
        self.floor.gate_producer(producer)  # a new audio producer is muted from the start unless heard
        for other in self.participants.values():
            if other.id != producer.participant_id and other.recv is not None:
                other.recv.consume(producer)
        self._spawn(self.outbox.broadcast(self, "track_added", track_info(producer)))

    def _on_producer_closed(self, producer: Producer) -> None:
        if not self.router.closed:
            self._spawn(self.outbox.broadcast(self, "track_removed", track_info(producer)))

    # -- subscribing ------------------------------------------------------------------------
    def _consumers(self, participant: Participant) -> list[dict[str, Any]]:
        recv = participant.recv
        if recv is None:
            return []
        return [{"consumer_id": c.id, "producer_id": c.producer_id, "participant_id": c.producer.participant_id,
                 "kind": c.kind, "mid": recv.consumer_mid(c.id)} for c in recv.consumers.values()]

    async def subscribe(self, participant: Participant) -> dict[str, Any]:
        if participant.recv is not None:
            raise WrongState("already subscribed; use restart to rebuild the receiving connection")
        participant.recv = self._transport(participant, "recv")
        for producer in list(self.router.producers.values()):
            if producer.participant_id != participant.id:
                participant.recv.consume(producer)
        async with participant.negotiation_lock:
            if not participant.recv.consumers:
                return {"sdp": None, "revision": participant.revision, "consumers": []}
            return await self._offer(participant)

    async def _offer(self, participant: Participant) -> dict[str, Any]:
        assert participant.recv is not None
        try:
            sdp = await participant.recv.create_offer()
        except MediaError as exc:
            raise NegotiationFailed(str(exc)) from None
        participant.revision += 1
        participant.offered_media = media_count(sdp)
        participant.awaiting_answer = True
        participant.renegotiate = False
        return {"sdp": sdp, "revision": participant.revision, "consumers": self._consumers(participant)}

    async def negotiate(self, participant: Participant) -> None:
        """Send a new offer for the receiving connection, or note that one is due after the answer."""
        await asyncio.sleep(0)  # coalesce changes made in the same tick
        async with participant.negotiation_lock:
            if participant.recv is None or participant.recv.closed or participant.id not in self.participants:
                return
            if participant.awaiting_answer:
                participant.renegotiate = True
                return
            if not participant.recv.consumers and participant.revision == 0:
                return
            payload = await self._offer(participant)
        await self.outbox.to(participant, "offer", payload)

    async def answer(self, participant: Participant, sdp: str, revision: int) -> dict[str, Any]:
        async with participant.negotiation_lock:
            if participant.recv is None or not participant.awaiting_answer:
                raise WrongState("no offer is waiting for an answer")
            if revision != participant.revision:
                raise WrongState(f"this answer is for offer {revision}; the current offer is {participant.revision}")
            answered = media_count(sdp)
            if answered != participant.offered_media:
                # Refused before any parsing: an answer padded with m-lines costs nothing.
                raise InvalidMessage(f"the answer has {answered} media sections; "
                                     f"the offer had {participant.offered_media}")
            try:
                await participant.recv.accept_answer(sdp)
            except MediaError as exc:
                raise NegotiationFailed(str(exc)) from None
            participant.awaiting_answer = False
            again = participant.renegotiate
        if again:
            self._spawn(self.negotiate(participant))
        return {}

    # -- controls ---------------------------------------------------------------------------
    async def set_muted(self, participant: Participant, kind: str, muted: bool) -> None:
        """The participant's own microphone or camera switch."""
        if kind == "audio" and not muted and participant.force_muted:
            raise Forbidden("a moderator has muted you; raise your hand to ask to speak", code="force_muted")
        if kind == "audio":
            participant.audio_muted = muted
        else:
            participant.video_muted = muted
        for producer in list(participant.producers.values()):
            if producer.kind == kind:
                producer.pause() if muted else producer.resume()
        await self.outbox.broadcast(self, "mute_changed", {"participant_id": participant.id, "kind": kind,
                                                           "muted": muted, "by": "self"})

    async def force_mute(self, participant: Participant, muted: bool) -> None:
        """A moderator's mute: the SFU stops forwarding the participant's audio, whatever their page does."""
        participant.force_muted = muted
        self.floor.gate(participant)
        await self.outbox.broadcast(self, "mute_changed", {
            "participant_id": participant.id, "kind": "audio", "muted": muted or participant.audio_muted,
            "by": "server", "force_muted": muted})

    def set_last_n(self, participant: Participant, n: int) -> None:
        self.router.set_last_n(participant.id, n)

    async def restart(self, participant: Participant, which: str) -> None:
        """Drop a broken connection; the client rebuilds it with publish or subscribe."""
        if which == "send":
            transport, participant.send = participant.send, None
        else:
            transport, participant.recv = participant.recv, None
            participant.awaiting_answer = participant.renegotiate = False
        if transport is not None:
            await transport.close()

    # -- router events ----------------------------------------------------------------------
    def _on_dominant_speaker(self, participant_id: str | None) -> None:
        self._spawn(self.outbox.broadcast(self, "dominant_speaker", {"participant_id": participant_id}))

    def _on_last_n(self, subscriber_id: str, producer_ids: frozenset[str]) -> None:
        participant = self.participants.get(subscriber_id)
        if participant is not None:
            self._spawn(self.outbox.to(participant, "last_n", {"producer_ids": sorted(producer_ids)}))

