"""Router: one per meeting; owns transports and producers, the dominant speaker, and what each
subscriber's slots carry."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from .config import MediaConfig
from .errors import InvalidStateError, MediaError, NotFoundError
from .events import EventEmitter
from .producer import Producer
from .rtp_packet import monotonic_ms
from .slot_assignment import Publisher, Wanted, wanted_streams
from .slot_set import SlotSet
from .speaker import DominantSpeakerDetector
from .transport import Direction, WebRtcTransport
from .watchers import WatchTracker, downstream_loss

logger = logging.getLogger(__name__)

SPEAKER_TICK_MS = 100
#: Watchers of each video are counted every this many speaker ticks (500 ms).
WATCH_EVERY_TICKS = 5


class Router(EventEmitter):
    """Events:
      * ``producer_added`` (producer), ``producer_closed`` (producer)
      * ``transport_closed`` (transport)
      * ``dominant_speaker_changed`` (participant_id: str | None)
      * ``keyframe_requested`` (producer) — a PLI was sent upstream (after throttling)
      * ``video_wanted`` (producer, wanted: bool) — nobody has taken the producer's video for a while
        (its publisher may stop sending it), or someone takes it again (:mod:`media.watchers`)
      * ``close`` ()

    Every receiving transport's slots (:meth:`WebRtcTransport.create_slots`) are kept filled here:
    after any change of producers, speakers, the stage or a subscriber's choices, each slot set is
    updated with :func:`media.slot_assignment.wanted_streams` (only slots whose producer changes
    switch).
    """

    def __init__(self, config: MediaConfig | None = None, *, router_id: str = "router") -> None:
        super().__init__()
        self.config = config or MediaConfig()
        self.id = router_id
        self.closed = False
        self.transports: dict[str, WebRtcTransport] = {}
        self.producers: dict[str, Producer] = {}
        self.pinned: frozenset[str] = frozenset()
        self.speaker_order: list[str] = []
        #: Whoever holds the floor (their voice and face go to every stage unless spotlighted).
        self.floor_holder: str | None = None
        #: The chair put this participant on everyone's stage.
        self.spotlight: str | None = None
        self._ids = itertools.count(1)
        #: Ids unique beyond this router: a pipe carries producers of several routers and processes.
        self._id_tag = secrets.token_hex(3)
        self._last_n: dict[str, int] = {}
        self._own_pins: dict[str, str] = {}
        self._slot_sets: dict[str, SlotSet] = {}
        self._batch_depth = 0
        self._batched: set[str | None] = set()
        self._detector = DominantSpeakerDetector(switch_ms=self.config.speaker_switch_ms)
        self._speaker_task: asyncio.Task[None] | None = None
        self.watch = WatchTracker()
        self._ticks = 0

    def __repr__(self) -> str:
        return f"Router({self.id!r})"

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{self._id_tag}-{next(self._ids)}"

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"{self!r} is closed")

    # -- transports -------------------------------------------------------------------------

    def create_transport(
        self, participant_id: str, direction: Direction, *, transport_id: str | None = None
    ) -> WebRtcTransport:
        """A new peer connection for ``participant_id``: ``send`` (publishes) or ``recv``."""
        self._check_open()
        transport = WebRtcTransport(
            router=self,
            transport_id=transport_id or self.new_id("transport"),
            participant_id=participant_id,
            direction=direction,
            config=self.config,
        )
        self.transports[transport.id] = transport
        return transport

    def forget_transport(self, transport: WebRtcTransport) -> None:
        if self.transports.pop(transport.id, None) is not None:
            self.emit("transport_closed", transport)

    # -- producers --------------------------------------------------------------------------

    def get_producer(self, producer_id: str) -> Producer:
        try:
            return self.producers[producer_id]
        except KeyError:
            raise NotFoundError(f"no producer {producer_id!r}") from None

    def add_producer(self, producer: Producer) -> None:
        self.producers[producer.id] = producer
        producer.on("close", lambda: self._on_producer_closed(producer))
        producer.on("keyframerequest", lambda: self.emit("keyframe_requested", producer))
        for state in ("pause", "resume", "mute"):
            producer.on(state, lambda *_: self.update_slots())
        if producer.kind == "audio":
            self._detector.add_speaker(producer.participant_id)
            if self._speaker_task is None:
                self._speaker_task = asyncio.ensure_future(self._run_speaker_detection())
        self.emit("producer_added", producer)
        self.update_slots()

    def _on_producer_closed(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        if producer.kind == "audio" and not any(
            p.kind == "audio" and p.participant_id == producer.participant_id for p in self.producers.values()
        ):
            self._detector.remove_speaker(producer.participant_id)
            if self.dominant_speaker is None and producer.participant_id in self.speaker_order[:1]:
                self.emit("dominant_speaker_changed", None)
        if not any(p.participant_id == producer.participant_id for p in self.producers.values()):
            if producer.participant_id in self.speaker_order:  # gone: the order stays bounded
                self.speaker_order.remove(producer.participant_id)
        self.emit("producer_closed", producer)
        self.update_slots()

    # -- server-side control ----------------------------------------------------------------

    def set_producer_muted(self, producer_id: str, muted: bool) -> None:
        """Stop (or restart) forwarding a producer's packets: enforced mute, floor control."""
        self.get_producer(producer_id).set_muted(muted)

    def set_participant_audio_muted(self, participant_id: str, muted: bool) -> None:
        """Server-mute every audio producer of a participant (e.g. has not got the floor)."""
        for producer in list(self.producers.values()):
            if producer.participant_id == participant_id and producer.kind == "audio":
                producer.set_muted(muted)

    def set_pinned(self, participant_ids: Iterable[str]) -> None:
        """Participants every subscriber always receives first (chair, floor holder)."""
        pinned = frozenset(participant_ids)
        if pinned != self.pinned:
            self.pinned = pinned
            self.update_slots()

    def set_stage(self, *, floor_holder: str | None, spotlight: str | None) -> None:
        """Who goes on every stage: the spotlight, else (after a subscriber's own pin) the floor holder."""
        if (floor_holder, spotlight) != (self.floor_holder, self.spotlight):
            self.floor_holder, self.spotlight = floor_holder, spotlight
            self.update_slots()

    def set_own_pin(self, subscriber_id: str, participant_id: str | None) -> None:
        """``subscriber_id`` pinned ``participant_id`` to its own stage (None: unpinned)."""
        if participant_id is None:
            changed = self._own_pins.pop(subscriber_id, None) is not None
        else:
            changed = self._own_pins.get(subscriber_id) != participant_id
            self._own_pins[subscriber_id] = participant_id
        if changed:
            self.update_slots(only=subscriber_id)

    def set_last_n(self, subscriber_id: str, n: int | None) -> None:
        """How many videos ``subscriber_id`` receives, the stage's included (None: ``config.last_n``;
        0: audio only)."""
        if n is None:
            self._last_n.pop(subscriber_id, None)
        else:
            if not 0 <= n <= 64:
                raise ValueError("last-N must be between 0 and 64")
            self._last_n[subscriber_id] = n
        self.update_slots(only=subscriber_id)

    def forget_subscriber(self, subscriber_id: str) -> None:
        """The participant left: drop its choices (pin, last-N)."""
        self._own_pins.pop(subscriber_id, None)
        self._last_n.pop(subscriber_id, None)
        for pinner, pinned in list(self._own_pins.items()):
            if pinned == subscriber_id:
                del self._own_pins[pinner]

    # -- slots ------------------------------------------------------------------------------

    def add_slot_set(self, slot_set: SlotSet) -> None:
        """A receiving transport's slots (called by :meth:`WebRtcTransport.create_slots`)."""
        self._check_open()
        subscriber = slot_set.subscriber_id
        old = self._slot_sets.get(subscriber)
        if old is not None and not old.closed:
            raise InvalidStateError(f"{subscriber!r} already has a receiving connection with slots")
        self._slot_sets[subscriber] = slot_set
        slot_set.on("close", lambda: self._forget_slot_set(slot_set))
        self.update_slots(only=subscriber)

    def _forget_slot_set(self, slot_set: SlotSet) -> None:
        if self._slot_sets.get(slot_set.subscriber_id) is slot_set:
            del self._slot_sets[slot_set.subscriber_id]

    def slot_set(self, subscriber_id: str) -> SlotSet | None:
        return self._slot_sets.get(subscriber_id)

    def _publishers(self) -> list[Publisher]:
        """Per participant (publishing order): its audio, and its video unless the camera is off."""
        found: dict[str, dict[str, str]] = {}
        for producer in self.producers.values():
            if producer.closed or (producer.kind == "video" and producer.paused):
                found.setdefault(producer.participant_id, {})
                continue
            found.setdefault(producer.participant_id, {}).setdefault(producer.kind, producer.id)
        return [Publisher(p, audio=k.get("audio"), video=k.get("video")) for p, k in found.items()]

    def wanted(self, subscriber_id: str, publishers: list[Publisher] | None = None) -> Wanted:
        """What ``subscriber_id``'s slots should carry now."""
        wanted = wanted_streams(
            subscriber=subscriber_id,
            publishers=publishers if publishers is not None else self._publishers(),
            speaker_order=self.speaker_order,
            dominant_speaker=self.dominant_speaker,
            floor_holder=self.floor_holder,
            spotlight=self.spotlight,
            own_pin=self._own_pins.get(subscriber_id),
            pinned=self.pinned,
        )
        n = self._last_n.get(subscriber_id, self.config.last_n)
        producers = self.producers
        return Wanted(
            stage_audio=wanted.stage_audio,
            stage_video=wanted.stage_video if n >= 1 else None,
            videos=wanted.videos[: max(0, n - 1)],
            # An extra audio slot only for a voice that is forwarded (floor gate, mutes).
            audios=tuple(a for a in wanted.audios if producers[a].forwarding),
        )

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Changes made inside (e.g. muting every voice as a session opens) refill the slots once, at
        the end, instead of once per change."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._batched:
                pending, self._batched = self._batched, set()
                self.update_slots(next(iter(pending)) if len(pending) == 1 else None)  # one subscriber, else all

    def update_slots(self, only: str | None = None) -> None:
        """Refill every subscriber's slots (or ``only`` that one's)."""
        if self.closed or not self._slot_sets:
            return
        if self._batch_depth:
            self._batched.add(only)
            return
        publishers = self._publishers()
        targets = [only] if only is not None else list(self._slot_sets)
        for subscriber in targets:
            slot_set = self._slot_sets.get(subscriber)
            if slot_set is None or slot_set.closed:
                continue
            try:
                slot_set.update(self.wanted(subscriber, publishers), self.producers)
            except (ValueError, MediaError) as exc:  # e.g. a producer in a codec no slot has
                logger.warning("%r: cannot fill the slots of %s: %s", self, subscriber, exc)

    # -- dominant speaker -------------------------------------------------------------------

    @property
    def dominant_speaker(self) -> str | None:
        return self._detector.dominant

    def on_audio_level(self, producer: Producer, level: int, now_ms: int, media_ms: float = 20.0) -> None:
        """Per audio packet with an audio level, with the media time it carries (hot path; cheap)."""
        self._detector.add_level(producer.participant_id, level, now_ms, media_ms)

    def tick_speaker(self, now_ms: int) -> None:
        changed = self._detector.tick(now_ms)
        if changed is not None:
            if changed in self.speaker_order:
                self.speaker_order.remove(changed)
            self.speaker_order.insert(0, changed)
            self.emit("dominant_speaker_changed", changed)
            self.update_slots()

    def tick_watchers(self, now_ms: int) -> None:
        producers = list(self.producers.values())
        for producer in producers:
            if producer.kind == "audio":
                producer.downstream_loss = downstream_loss(producer)
        for producer, wanted in self.watch.update(producers, now_ms):
            self.emit("video_wanted", producer, wanted)

    async def _run_speaker_detection(self) -> None:
        try:
            while not self.closed:
                await asyncio.sleep(SPEAKER_TICK_MS / 1000)
                now = monotonic_ms()
                self.tick_speaker(now)
                self._ticks += 1
                if self._ticks % WATCH_EVERY_TICKS == 0:
                    self.tick_watchers(now)
        except asyncio.CancelledError:
            pass

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every transport (cascading to producers and slots); emits ``close``."""
        if self.closed:
            return
        transports = list(self.transports.values())
        for transport in transports:
            await transport.close()
        self.closed = True
        if self._speaker_task is not None:
            self._speaker_task.cancel()
        self.emit("close")
        self.remove_all_listeners()
