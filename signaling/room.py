"""A meeting's live room: its media Router and the connected participants.

The room turns participants' requests into calls on the SFU's control API and the Router's events
into messages for the participants. It knows nothing of socket.io: it sends through ``Outbox``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from media import MediaError, Producer, Router, SlotSwitch, WebRtcTransport
from media.config import MediaConfig
from meetings.models.base import utcnow
from meetings.services import Services
from meetings.services.live import Sanctions
from signaling.errors import Forbidden, InvalidMessage, NegotiationFailed, WrongState
from signaling.floor import SessionControl
from signaling.links import RoomLinks
from signaling.moderation import Moderation
from signaling.participant import Participant
from signaling.recording import RoomRecording
from signaling.validation import media_count

log = logging.getLogger("signaling.room")

DEPARTURES_KEPT = 500


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
                 agenda: dict[str, Any] | None = None, sanctions: Sanctions | None = None,
                 archive_root: Path | None = None, host_office_id: int | None = None) -> None:
        self.meeting_id = meeting_id
        #: The office that hosts the meeting (a provincial node defers the floor of meetings hosted elsewhere).
        self.host_office_id = host_office_id
        self.router = Router(config, router_id=f"meeting-{meeting_id}")
        self.outbox = outbox
        #: Carries a participant's request to the server that runs this room's session (a node's share of a
        #: centre-hosted meeting, while its pipe is up: provincial_nodes/node_pipes.py); None: no way there.
        self.to_host: Callable[[Participant, str, dict[str, Any]], Awaitable[None]] | None = None
        self.participants: dict[str, Participant] = {}
        #: Participants behind a pipe (a provincial node's people at the centre, the centre's at a node):
        #: participant id -> what everyone sees of them (their ``public()``), set by the pipe that carries them.
        self.remote: dict[str, dict[str, Any]] = {}
        self._remote_via: dict[str, object] = {}
        #: Pipes that keep this room open while they carry it (a node's people are in the meeting).
        self.holds: set[object] = set()
        #: When each participant left (the last :data:`DEPARTURES_KEPT`): a provincial node tells the centre,
        #: after a WAN cut, when its people left during the cut.
        self.departures: dict[str, dt.datetime] = {}
        self.ice_servers = ice_servers
        self.moderation = Moderation(self, services, locked=locked, lobby_enabled=lobby_enabled,
                                     agenda=agenda or {"items": [], "current_item_id": None},
                                     sanctions=sanctions or Sanctions())
        self.floor = SessionControl(self, services)
        self.recording = RoomRecording(self, services, archive_root)
        self.links = RoomLinks(self)
        self._on_empty = on_empty
        self._tasks: set[asyncio.Task[Any]] = set()
        self.router.on("producer_added", self._on_producer_added)
        self.router.on("producer_closed", self._on_producer_closed)
        self.router.on("dominant_speaker_changed", self._on_dominant_speaker)
        self.router.on("video_wanted", self._on_video_wanted)

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
        self.update_pins()
        await self.outbox.broadcast(self, "participant_joined", participant.public(), skip=participant)
        await self.moderation.set_presence(participant, "joined")
        return {
            "lobby": False,
            "participant_id": participant.id,
            "meeting": self._meeting(participant),
            "me": participant.public(),
            "permissions": {"publish": participant.may_publish, "moderate": participant.may_moderate},
            "ice_servers": self.ice_servers,
            "roster": self.roster(),
            "tracks": [track_info(p) for p in self.router.producers.values()],
            "dominant_speaker": self.router.dominant_speaker,
            "spotlight": self.router.spotlight,
            "hands": self.moderation.hands(),
            "agenda": self.moderation.agenda,
            "room_state": self.moderation.state(),
            "recording": self.recording.payload(),
            "links": self.links.payload(),
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
        self.departures[participant.id] = participant.gone_at or utcnow()
        while len(self.departures) > DEPARTURES_KEPT:
            del self.departures[next(iter(self.departures))]
        for transport in (participant.send, participant.recv):
            if transport is not None:
                await transport.close()
        participant.send = participant.recv = None
        self.router.forget_subscriber(participant.id)
        self.links.forget(participant)
        spotlighted = self.router.spotlight == participant.id
        await self.floor.on_left(participant, status)
        with self.router.batch():  # one refill for both changes
            if spotlighted:
                self.router.set_stage(floor_holder=self.router.floor_holder, spotlight=None)
            self.update_pins()
        if spotlighted:
            await self.outbox.broadcast(self, "spotlight", {"participant_id": None})
        await self.outbox.broadcast(self, "participant_left", {"participant_id": participant.id, "status": status})
        if participant.hand_raised_at is not None:
            participant.hand_raised_at = None
            await self.outbox.broadcast(self, "hands", {"queue": self.moderation.hands()})
        await self.moderation.set_presence(participant, status)
        await self._close_if_empty()

    def roster(self) -> list[dict[str, Any]]:
        return [p.public() for p in self.participants.values()] + list(self.remote.values())

    def knows(self, participant_id: str) -> bool:
        """Whether ``participant_id`` is in the meeting here or behind a pipe."""
        return participant_id in self.participants or participant_id in self.remote

    async def set_remote(self, via: object, entries: list[dict[str, Any]]) -> None:
        """The participants the pipe ``via`` carries now (all of them: those missing have left)."""
        wanted = {e["participant_id"]: e for e in entries}
        for pid in [p for p, v in self._remote_via.items() if v is via and p not in wanted]:
            del self._remote_via[pid]
            self.remote.pop(pid, None)
            await self.floor.on_remote_left(pid)
            await self.outbox.broadcast(self, "participant_left", {"participant_id": pid, "status": "left"})
        for pid, entry in wanted.items():
            if pid in self.participants or self._remote_via.get(pid, via) is not via:
                continue  # an id already here, or another pipe's: never replaced from this one
            old = self.remote.get(pid)
            if old == entry:
                continue
            self.remote[pid], self._remote_via[pid] = entry, via
            if old is None:
                await self.outbox.broadcast(self, "participant_joined", entry)
                continue
            for kind in ("audio", "video"):
                if old.get(f"{kind}_muted") != entry.get(f"{kind}_muted"):
                    await self.outbox.broadcast(self, "mute_changed", {
                        "participant_id": pid, "kind": kind, "muted": entry.get(f"{kind}_muted"), "by": "self"})
        if self.moderation.note_remote_hands():
            await self.outbox.broadcast(self, "hands", {"queue": self.moderation.hands()})

    def _person_id(self, participant_id: str) -> int | None:
        here = self.participants.get(participant_id)
        return here.person_id if here is not None else self.remote.get(participant_id, {}).get("person_id")

    def remote_via(self, participant_id: str) -> object | None:
        return self._remote_via.get(participant_id)

    async def _close_if_empty(self) -> None:
        if not self.participants and not self.moderation.lobby and not self.holds:
            await self._on_empty(self)

    async def close(self) -> None:
        await self.floor.close()
        await self.recording.stop()
        self.links.close()
        await self.router.close()
        for task in list(self._tasks):
            task.cancel()

    def update_pins(self) -> None:
        """Tell the router who is first everywhere (the chair, the floor holder) and who holds the
        floor (on every stage unless a moderator spotlights someone)."""
        participants = self.participants.values()
        remote = self.floor.remote_holder()  # the holder joined through a node's pipe
        pinned = [p.id for p in participants if p.is_chair or self.floor.holds_floor(p)]
        self.router.set_pinned(pinned + [remote] if remote else pinned)
        holder = remote or next((p.id for p in participants if p.client == "room" and self.floor.holds_floor(p)), None)
        self.router.set_stage(floor_holder=holder, spotlight=self.router.spotlight)
        self.recording.update_stage()

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
        return transport

    def _on_producer_added(self, producer: Producer) -> None:
        self.floor.gate_producer(producer)  # a new audio producer is muted from the start unless heard
        self._spawn(self.outbox.broadcast(self, "track_added", track_info(producer)))

    def _on_producer_closed(self, producer: Producer) -> None:
        if not self.router.closed:
            self._spawn(self.outbox.broadcast(self, "track_removed", track_info(producer)))

    # -- subscribing ------------------------------------------------------------------------
    async def subscribe(self, participant: Participant, videos: int, audios: int) -> dict[str, Any]:
        """The receiving connection, negotiated once with a fixed set of slots (media/slot_set.py):
        the stage, ``videos`` thumbnails and ``audios`` extra voices. The router fills the slots; a
        ``slot`` event tells the participant who each slot carries from which frame on."""
        if participant.recv is not None:
            raise WrongState("already subscribed; use restart to rebuild the receiving connection")
        recv = participant.recv = self._transport(participant, "recv")
        try:
            slot_set = recv.create_slots(videos=videos, audios=audios)
            slot_set.on("switch", lambda event: self._on_slot_switch(participant, recv, event))
            self.links.attach(participant, recv)
            sdp = await recv.create_offer()
        except MediaError as exc:
            if participant.recv is recv:
                participant.recv = None
            await recv.close()
            raise NegotiationFailed(str(exc)) from None
        participant.offered_media = media_count(sdp)
        participant.awaiting_answer = True
        slots = [{"slot_id": slot.id, "kind": slot.kind, "mid": recv.slot_mid(slot.id),
                  "stream_id": slot.stream_id, "track_id": slot.id} for slot in slot_set.slots.values()]
        return {"sdp": sdp, "revision": 1, "slots": slots}

    async def answer(self, participant: Participant, sdp: str, revision: int) -> dict[str, Any]:
        """The participant's answer to its one offer: the slots start carrying media."""
        if participant.recv is None or not participant.awaiting_answer:
            raise WrongState("no offer is waiting for an answer")
        if revision != 1:
            raise WrongState(f"this answer is for offer {revision}; the offer is 1")
        answered = media_count(sdp)
        if answered != participant.offered_media:
            # Refused before any parsing: an answer padded with m-lines costs nothing.
            raise InvalidMessage(f"the answer has {answered} media sections; "
                                 f"the offer had {participant.offered_media}")
        recv = participant.recv
        participant.awaiting_answer = False
        try:
            await recv.accept_answer(sdp)
        except MediaError as exc:
            if participant.recv is recv:
                participant.awaiting_answer = True  # a corrected answer may follow
            raise NegotiationFailed(str(exc)) from None
        if recv.slot_set is not None:  # what the slots carry already (voices are announced at once)
            for event in sorted(recv.slot_set.last_switches.values(), key=lambda e: e.sequence):
                self._on_slot_switch(participant, recv, event)
        return {}

    def _on_slot_switch(self, participant: Participant, recv: WebRtcTransport, event: SlotSwitch) -> None:
        """Tell the participant; not before its answer (its page sets up the slots from the subscribe
        answer): the answer sends what every slot carries by then."""
        if participant.recv is not recv or participant.awaiting_answer or participant.id not in self.participants:
            return
        self._spawn(self.outbox.to(participant, "slot", {
            "slot_id": event.slot_id, "mid": recv.slot_mid(event.slot_id), "producer_id": event.producer_id,
            "participant_id": event.participant_id, "sequence": event.sequence,
            "rtp_timestamp": event.rtp_timestamp, "rtp_sequence_number": event.rtp_sequence_number}))

    def pin(self, participant: Participant, target_id: str | None) -> None:
        """Put ``target_id`` on the participant's own stage (None: follow the session again)."""
        if target_id is not None and not self.knows(target_id):
            raise WrongState("no such participant in this meeting", code="not_found")
        self.router.set_own_pin(participant.id, target_id)

    async def spotlight(self, moderator: Participant, target_id: str | None) -> None:
        """A moderator puts ``target_id`` on everyone's stage (None: the floor holder or the speaker again)."""
        if target_id is not None and not self.knows(target_id):
            raise WrongState("no such participant in this meeting", code="not_found")
        if target_id is not None:
            await self.moderation.services.live.record_moderation(
                moderator.caller, self.meeting_id, "stage.spotlight",
                {"participant_id": target_id, "person_id": self._person_id(target_id)})
        else:
            await self.moderation.services.live.record_moderation(
                moderator.caller, self.meeting_id, "stage.spotlight_off", {})
        self.router.set_stage(floor_holder=self.router.floor_holder, spotlight=target_id)
        await self.outbox.broadcast(self, "spotlight", {"participant_id": target_id})

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
        """How many videos the participant receives, the stage's included (0: audio only)."""
        self.router.set_last_n(participant.id, n)

    async def restart(self, participant: Participant, which: str) -> None:
        """Drop a broken connection; the client rebuilds it with publish or subscribe."""
        if which == "send":
            transport, participant.send = participant.send, None
        else:
            transport, participant.recv = participant.recv, None
            participant.awaiting_answer = False
        if transport is not None:
            await transport.close()

    # -- router events ----------------------------------------------------------------------
    def _on_video_wanted(self, producer: Producer, wanted: bool) -> None:
        """Nobody takes this camera (or someone does again): its page stops (starts) sending it."""
        owner = self.participants.get(producer.participant_id)
        if owner is not None:
            self._spawn(self.outbox.to(owner, "video_wanted", {"producer_id": producer.id, "wanted": wanted}))

    def _on_dominant_speaker(self, participant_id: str | None) -> None:
        self._spawn(self.outbox.broadcast(self, "dominant_speaker", {"participant_id": participant_id}))
