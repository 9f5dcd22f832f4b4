"""The impairment of one direction, as pure code: loss models, the rate/queue scheduler, delay and jitter.

Nothing here reads a clock or touches a device: callers pass ``now`` (seconds, any monotonic origin)
and get back when a packet is to be delivered, or why it is dropped. That makes it testable with a
fake clock and reproducible with a seeded ``random.Random``.

Order of a packet's fate: blackhole (outage) -> drop-tail queue -> serialization at the link rate ->
random/burst loss on the wire (a lost packet still used link time) -> propagation delay with jitter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from typing import Protocol

from .profiles import LinkSpec

#: Drop reasons (keys in Counters).
LOSS, QUEUE, OUTAGE, POLICY = "loss", "queue", "outage", "policy"


class LossModel(Protocol):
    def lost(self) -> bool: ...


class NoLoss:
    def lost(self) -> bool:
        return False


class BernoulliLoss:
    """Each packet lost independently with probability ``p``."""

    def __init__(self, p: float, rng: random.Random) -> None:
        self.p = p
        self._random = rng.random

    def lost(self) -> bool:
        return self._random() < self.p


class GilbertElliottLoss:
    """Two-state Markov loss: Good (loss ``k``) and Bad (loss ``h``), moving G->B with ``p``, B->G with ``r``.

    With the defaults h=1, k=0 ("Gilbert" model) a stay in Bad is a burst of losses of mean length 1/r
    and the average loss is p / (p + r).
    """

    def __init__(self, p: float, r: float, rng: random.Random, *, h: float = 1.0, k: float = 0.0) -> None:
        self.p, self.r, self.h, self.k = p, r, h, k
        self.bad = False
        self._random = rng.random

    @classmethod
    def from_average(cls, loss: float, mean_burst: float, rng: random.Random) -> GilbertElliottLoss:
        """The chain whose average loss is ``loss`` and whose loss bursts average ``mean_burst`` packets."""
        r = 1.0 / mean_burst
        p = r * loss / (1.0 - loss)
        return cls(p, r, rng)

    def lost(self) -> bool:
        # Transition first, then lose according to the state the packet meets.
        if self.bad:
            if self._random() < self.r:
                self.bad = False
        elif self._random() < self.p:
            self.bad = True
        probability = self.h if self.bad else self.k
        return probability >= 1.0 or (probability > 0.0 and self._random() < probability)


def make_loss_model(spec: LinkSpec, rng: random.Random) -> LossModel:
    if spec.loss <= 0:
        return NoLoss()
    if spec.burst is not None and spec.burst > 1:
        return GilbertElliottLoss.from_average(spec.loss, spec.burst, rng)
    return BernoulliLoss(spec.loss, rng)


class RateQueue:
    """A link of ``rate_bps`` fed by a drop-tail FIFO bounded in time-to-drain (and optionally bytes).

    The queue is kept as the time the link is busy until: a packet arriving at ``now`` waits
    ``busy_until - now`` (the backlog), then takes ``size * 8 / rate`` to serialize.
    """

    def __init__(self, rate_bps: float | None, queue_ms: float, queue_bytes: int | None = None) -> None:
        self.rate_bps = rate_bps
        self.busy_until = 0.0
        if rate_bps:
            limit = queue_ms / 1000.0
            if queue_bytes is not None:
                limit = min(limit, queue_bytes * 8 / rate_bps)
            # At least one full-size packet fits, whatever the bound.
            self.limit_s = max(limit, 1500 * 8 / rate_bps)
        else:
            self.limit_s = float("inf")

    def backlog_s(self, now: float) -> float:
        return max(0.0, self.busy_until - now)

    def backlog_bytes(self, now: float) -> int:
        return int(self.backlog_s(now) * self.rate_bps / 8) if self.rate_bps else 0

    def admit(self, size: int, now: float) -> float | None:
        """When the packet's last bit leaves the link, or None if the queue is full (dropped)."""
        if not self.rate_bps:
            return now
        start = self.busy_until if self.busy_until > now else now
        transmit = size * 8 / self.rate_bps
        if start - now + transmit > self.limit_s:
            return None
        self.busy_until = start + transmit
        return self.busy_until


@dataclass
class Counters:
    """Packets and bytes of one direction: what came in, what was delivered, what was dropped and why."""

    in_packets: int = 0
    in_bytes: int = 0
    delivered_packets: int = 0
    delivered_bytes: int = 0
    dropped_loss: int = 0
    dropped_queue: int = 0
    dropped_outage: int = 0
    dropped_policy: int = 0
    #: Writes the far device refused (should stay 0).
    dropped_write: int = 0

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def in_flight(self) -> int:
        dropped = self.dropped_loss + self.dropped_queue + self.dropped_outage + self.dropped_policy + self.dropped_write
        return self.in_packets - self.delivered_packets - dropped


class Direction:
    """One direction of a link: decides each packet's delivery time, or drops it and counts why."""

    def __init__(self, spec: LinkSpec, rng: random.Random) -> None:
        self.counters = Counters()
        self.outage = False
        self._rng = rng
        self._last_delivery = 0.0
        self.configure(spec)

    def configure(self, spec: LinkSpec) -> None:
        """Apply a new spec at run time; counters, the in-order floor and the queue's backlog carry over."""
        old_busy = getattr(self, "queue", None)
        self.spec = spec
        self.loss_model = make_loss_model(spec, self._rng)
        self.queue = RateQueue(spec.rate_kbit * 1000 if spec.rate_kbit else None, spec.queue_ms, spec.queue_bytes)
        if old_busy is not None and self.queue.rate_bps:
            self.queue.busy_until = old_busy.busy_until
        self._delay = spec.delay_ms / 1000.0
        self._jitter = spec.jitter_ms / 1000.0

    def refuse(self, size: int, reason: str = POLICY) -> None:
        """Count a packet the relay will not carry at all (policy)."""
        c = self.counters
        c.in_packets += 1
        c.in_bytes += size
        if reason == POLICY:
            c.dropped_policy += 1
        else:
            raise ValueError(f"not a refusal reason: {reason}")

    def offer(self, size: int, now: float) -> float | None:
        """A packet of ``size`` bytes arrives at ``now``: its delivery time, or None when dropped (counted)."""
        c = self.counters
        c.in_packets += 1
        c.in_bytes += size
        if self.outage:
            c.dropped_outage += 1
            return None
        departure = self.queue.admit(size, now)
        if departure is None:
            c.dropped_queue += 1
            return None
        if self.loss_model.lost():
            c.dropped_loss += 1
            return None
        delivery = departure + self._delay
        if self._jitter:
            delivery += self._rng.uniform(-self._jitter, self._jitter)
        if not self.spec.reorder:
            if delivery < self._last_delivery:
                delivery = self._last_delivery
            self._last_delivery = delivery
        return delivery

    def deliver(self, size: int) -> bool:
        """The relay is about to write a packet whose time has come; False if a blackhole now eats it."""
        c = self.counters
        if self.outage:
            c.dropped_outage += 1
            return False
        c.delivered_packets += 1
        c.delivered_bytes += size
        return True

    def write_failed(self, size: int) -> None:
        c = self.counters
        c.delivered_packets -= 1
        c.delivered_bytes -= size
        c.dropped_write += 1
