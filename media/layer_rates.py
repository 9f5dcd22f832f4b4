"""What one producer's temporal layers cost on a subscriber's wire, measured from what arrives.

A site's budget (:mod:`media.allocation`) needs, per stream, the bit rate of TL0, TL0+TL1 and all
layers as they would be sent: the producer counts bytes and packets per TID
(``Producer.layer_bytes`` / ``layer_packets``); :meth:`LayerRates.sample` turns the counters into
smoothed cumulative rates, at most every :data:`MIN_INTERVAL_MS` (every site budget of a meeting
asks in the same tick: the first one measures). Each packet is counted with the IP, UDP and SRTP
overhead it will carry to a subscriber (:data:`WIRE_OVERHEAD`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .allocation import DEFAULT_AUDIO_RATE, DEFAULT_VIDEO_RATES

if TYPE_CHECKING:
    from .producer import Producer

#: IPv4 (20) + UDP (8) + SRTP auth tag (10) bytes per packet, and the slot's header extensions (~12).
WIRE_OVERHEAD = 50
MIN_INTERVAL_MS = 400
#: Per-layer bit/s the smoothing starts from (TL0, TL1, TL2, none): the allocation's defaults apart.
_START_RATES = (DEFAULT_VIDEO_RATES[0], DEFAULT_VIDEO_RATES[1] - DEFAULT_VIDEO_RATES[0],
                DEFAULT_VIDEO_RATES[2] - DEFAULT_VIDEO_RATES[1], 0)
_START_AUDIO_RATES = (DEFAULT_AUDIO_RATE, 0, 0, 0)
#: Weight of a new measurement in the smoothed rate (~2 s: a requested keyframe is a bump, not a step).
ALPHA = 0.2


class LayerRates:
    """Smoothed cumulative bit/s per temporal layer of one producer."""

    __slots__ = ("_producer", "_last_ms", "_bytes", "_packets", "_rates", "_measured")

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._last_ms: int | None = None
        self._bytes = [0, 0, 0, 0]
        self._packets = [0, 0, 0, 0]
        # the smoothing starts from a typical stream's layers: a stream's first interval holds its first
        # keyframe, several times what it sends after
        self._rates = [float(r) for r in (_START_RATES if producer.kind == "video" else _START_AUDIO_RATES)]
        self._measured = False

    @property
    def measured(self) -> bool:
        """A rate was measured (the producer has sent for at least one interval)."""
        return self._measured

    def sample(self, now_ms: int) -> tuple[int, ...]:
        """Cumulative bit/s of layers 0..n-1 (n = the producer's temporal layers so far)."""
        producer = self._producer
        if self._last_ms is None:
            self._last_ms = now_ms
            self._bytes = list(producer.layer_bytes)
            self._packets = list(producer.layer_packets)
        elif now_ms - self._last_ms >= MIN_INTERVAL_MS:
            seconds = (now_ms - self._last_ms) / 1000
            for tid in range(4):
                wire = (producer.layer_bytes[tid] - self._bytes[tid]
                        + WIRE_OVERHEAD * (producer.layer_packets[tid] - self._packets[tid]))
                rate = wire * 8 / seconds
                self._rates[tid] = (1 - ALPHA) * self._rates[tid] + ALPHA * rate
            self._measured = True
            self._last_ms = now_ms
            self._bytes = list(producer.layer_bytes)
            self._packets = list(producer.layer_packets)
        total = 0.0
        out = []
        for tid in range(producer.temporal_layers):
            total += self._rates[tid]
            out.append(int(total))
        return tuple(out)
