"""Whether anyone takes a producer's video: a publisher nobody watches stops sending it.

A provincial site's uplink is as poor as its downlink. In a session of 50 sites each subscriber
receives the stage and a few thumbnails, so most publishers' video goes nowhere; the router tells
their pages (the ``video_wanted`` event) to stop sending it, and again as soon as a slot wants it.
A video is *watched* while any sink takes it: a slot (current or pending source) that is not
paused, or any other sink (the recorder's tap: recordings are archived intact).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .slot import PAUSED
from .slot_tap import SlotTap

if TYPE_CHECKING:
    from .producer import Producer

#: A video must go unwatched this long before its publisher is told to stop (no flapping while
#: slots switch); it is told to start again at once.
UNWATCHED_AFTER_MS = 3000


def downstream_loss(producer: Producer) -> int:
    """The worst loss (0..255) the sites taking this producer report for its slots."""
    return max((sink.slot.stats.fraction_lost for sink in producer.sinks if isinstance(sink, SlotTap)), default=0)


def video_watched(producer: Producer) -> bool:
    for sink in producer.sinks:
        if not isinstance(sink, SlotTap) or sink.slot.target_layer != PAUSED:
            return True
    return False


class WatchTracker:
    """Per video producer: watched now, and since when unwatched; :meth:`update` returns the
    producers whose publisher must be told (producer, wanted)."""

    def __init__(self, unwatched_after_ms: int = UNWATCHED_AFTER_MS) -> None:
        self.unwatched_after_ms = unwatched_after_ms
        self._wanted: dict[str, bool] = {}
        self._unwatched_since: dict[str, int] = {}

    def wanted(self, producer_id: str) -> bool:
        return self._wanted.get(producer_id, True)

    def update(self, producers: list[Producer], now_ms: int) -> list[tuple[Producer, bool]]:
        changes: list[tuple[Producer, bool]] = []
        live = set()
        for producer in producers:
            if producer.kind != "video" or producer.closed:
                continue
            live.add(producer.id)
            was = self._wanted.get(producer.id, True)
            if video_watched(producer):
                self._unwatched_since.pop(producer.id, None)
                if not was:
                    self._wanted[producer.id] = True
                    changes.append((producer, True))
                continue
            since = self._unwatched_since.setdefault(producer.id, now_ms)
            if was and now_ms - since >= self.unwatched_after_ms:
                self._wanted[producer.id] = False
                changes.append((producer, False))
        for gone in set(self._wanted) - live:
            del self._wanted[gone]
            self._unwatched_since.pop(gone, None)
        return changes
