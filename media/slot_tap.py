"""SlotTap: a slot's attachment to one producer (its current or its pending source).

The tap is a :class:`media.producer.Sink` in ``producer.sinks``: the producer's fan-out, its
pause/mute and its close reach the slot through it. It is part of :class:`media.slot.Slot` and
calls the slot's own handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from .rtp_packet import RtpPacketView

if TYPE_CHECKING:
    from .producer import Producer
    from .slot import Slot


class SlotTap:
    """A slot's attachment to one producer (current or pending source): a sink in
    ``producer.sinks``, so the producer's fan-out, pause/mute and close reach the slot."""

    __slots__ = ("slot", "producer", "forwarding", "detached", "forward")

    def __init__(self, slot: Slot, producer: Producer) -> None:
        self.slot = slot
        self.producer = producer
        self.forwarding = True
        self.detached = False
        #: ``forward(packet, abs_send_time)``, the producer's fan-out call: the slot's keyframe /
        #: cut-over check (a C-level partial), then, once this tap is the current source and its
        #: epoch started, the slot's ``_send`` itself.
        self.forward: Callable[[RtpPacketView, bytes], None] = partial(slot._on_packet, self)
        producer.sinks.append(self)
        producer.refresh_active()

    def on_producer_state(self) -> None:
        self.slot._on_source_state(self)

    def send_sender_report(self) -> None:
        if self.slot._current is self:
            self.slot.send_sender_report()

    def close(self) -> None:
        """The producer closed."""
        self.detach()
        self.slot._on_source_closed(self)

    def detach(self) -> None:
        if self.detached:
            return
        self.detached = True
        self.forwarding = False
        sinks = self.producer.sinks
        if self in sinks:
            sinks.remove(self)
            self.producer.refresh_active()
