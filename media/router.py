"""Router: one per meeting; owns transports, producers and consumers, dominant speaker, last-N."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable

from .config import MediaConfig
from .consumer import Consumer
from .errors import InvalidStateError, NotFoundError
from .events import EventEmitter
from .last_n import select_last_n
from .producer import Producer
from .rtp_packet import monotonic_ms
from .speaker import DominantSpeakerDetector
from .transport import Direction, WebRtcTransport

logger = logging.getLogger(__name__)

SPEAKER_TICK_MS = 100


class Router(EventEmitter):
    """Events:
      * ``producer_added`` (producer), ``producer_closed`` (producer)
      * ``consumer_added`` (consumer), ``consumer_closed`` (consumer)
      * ``transport_closed`` (transport)
      * ``dominant_speaker_changed`` (participant_id: str | None)
      * ``last_n_changed`` (subscriber_id: str, producer_ids: frozenset[str])
      * ``keyframe_requested`` (producer) — a PLI was sent upstream (after throttling)
      * ``close`` ()
    """

    def __init__(self, config: MediaConfig | None = None, *, router_id: str = "router") -> None:
        super().__init__()
        self.config = config or MediaConfig()
        self.id = router_id
        self.closed = False
        self.transports: dict[str, WebRtcTransport] = {}
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        self.pinned: frozenset[str] = frozenset()
        self.speaker_order: list[str] = []
        self._ids = itertools.count(1)
        self._last_n: dict[str, int] = {}
        self._selection: dict[str, frozenset[str]] = {}
        self._detector = DominantSpeakerDetector(switch_ms=self.config.speaker_switch_ms)
        self._speaker_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Router({self.id!r})"

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

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
            self._update_last_n()

    # -- producers / consumers --------------------------------------------------------------

    def get_producer(self, producer_id: str) -> Producer:
        try:
            return self.producers[producer_id]
        except KeyError:
            raise NotFoundError(f"no producer {producer_id!r}") from None

    def get_consumer(self, consumer_id: str) -> Consumer:
        try:
            return self.consumers[consumer_id]
        except KeyError:
            raise NotFoundError(f"no consumer {consumer_id!r}") from None

    def add_producer(self, producer: Producer) -> None:
        self.producers[producer.id] = producer
        producer.on("close", lambda: self._on_producer_closed(producer))
        producer.on("keyframerequest", lambda: self.emit("keyframe_requested", producer))
        if producer.kind == "audio":
            self._detector.add_speaker(producer.participant_id)
            if self._speaker_task is None:
                self._speaker_task = asyncio.ensure_future(self._run_speaker_detection())
        self.emit("producer_added", producer)
        self._update_last_n()

    def _on_producer_closed(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        if producer.kind == "audio" and not any(
            p.kind == "audio" and p.participant_id == producer.participant_id for p in self.producers.values()
        ):
            self._detector.remove_speaker(producer.participant_id)
            if self.dominant_speaker is None and producer.participant_id in self.speaker_order[:1]:
                self.emit("dominant_speaker_changed", None)
        self.emit("producer_closed", producer)
        self._update_last_n()

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers[consumer.id] = consumer
        self.emit("consumer_added", consumer)
        # Only this consumer's subscriber can be affected: O(videos), not O(subscribers x consumers).
        self._update_last_n(only=consumer.subscriber_id)

    def forget_consumer(self, consumer: Consumer) -> None:
        if self.consumers.pop(consumer.id, None) is not None:
            self.emit("consumer_closed", consumer)

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
        """Participants whose video every subscriber always receives (chair, floor holder)."""
        pinned = frozenset(participant_ids)
        if pinned != self.pinned:
            self.pinned = pinned
            self._update_last_n()

    def set_last_n(self, subscriber_id: str, n: int | None) -> None:
        """Per-subscriber N (None: back to ``config.last_n``)."""
        if n is None:
            self._last_n.pop(subscriber_id, None)
        else:
            if not 0 <= n <= 64:
                raise ValueError("last-N must be between 0 and 64")
            self._last_n[subscriber_id] = n
        self._update_last_n()

    def last_n_selection(self, subscriber_id: str) -> frozenset[str]:
        return self._selection.get(subscriber_id, frozenset())

    # -- dominant speaker and last-N --------------------------------------------------------

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
            self._update_last_n()

    async def _run_speaker_detection(self) -> None:
        try:
            while not self.closed:
                await asyncio.sleep(SPEAKER_TICK_MS / 1000)
                self.tick_speaker(monotonic_ms())
        except asyncio.CancelledError:
            pass

    def _update_last_n(self, only: str | None = None) -> None:
        """Recompute the last-N selection of every subscriber (or of ``only``) and (de)activate
        their video consumers accordingly."""
        if self.closed:
            return
        videos = [(p.id, p.participant_id) for p in self.producers.values() if p.kind == "video" and not p.closed]
        subscribers = {t.participant_id for t in self.transports.values() if t.direction == "recv"}
        if only is not None:
            subscribers &= {only}
        video_consumers: dict[str, list[Consumer]] = {}
        for consumer in self.consumers.values():
            if consumer.kind == "video" and consumer.subscriber_id in subscribers:
                video_consumers.setdefault(consumer.subscriber_id, []).append(consumer)
        for subscriber in subscribers:
            selected = select_last_n(
                subscriber=subscriber,
                videos=videos,
                speaker_order=self.speaker_order,
                pinned=self.pinned,
                n=self._last_n.get(subscriber, self.config.last_n),
            )
            for consumer in video_consumers.get(subscriber, ()):
                consumer.set_last_n_active(consumer.producer_id in selected)
            if self._selection.get(subscriber) != selected:
                self._selection[subscriber] = selected
                self.emit("last_n_changed", subscriber, selected)
        if only is None:
            for gone in set(self._selection) - subscribers:
                del self._selection[gone]

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every transport (cascading to producers and consumers); emits ``close``."""
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
