"""A token bucket of bytes: how much a site may be sent besides its media (retransmissions).

A site that loses packets asks for them again, and a site on a 300 ms link asks again before the
answers arrive; answered without a limit, the retransmissions alone can exceed the link that lost the
packets. The site's budget (media/site_budget.py) sets the rate each tick (a share of the budget);
every slot of the site takes from the one bucket before it resends.
"""

from __future__ import annotations

from .rtp_packet import monotonic_ms


class ByteBucket:
    """``rate`` bytes per second, at most ``burst_ms`` of it saved up."""

    __slots__ = ("rate", "burst_ms", "_tokens", "_last_ms", "refused")

    def __init__(self, rate: float, burst_ms: int = 500) -> None:
        if rate < 0 or burst_ms <= 0:
            raise ValueError("a byte bucket needs a rate >= 0 and a burst > 0 ms")
        self.rate = rate
        self.burst_ms = burst_ms
        self._tokens = rate * burst_ms / 1000
        self._last_ms = monotonic_ms()
        #: Bytes refused (what was not resent).
        self.refused = 0

    def set_rate(self, rate: float) -> None:
        self._refill(monotonic_ms())
        self.rate = max(0.0, rate)

    def _refill(self, now_ms: int) -> None:
        elapsed = now_ms - self._last_ms
        if elapsed > 0:
            self._tokens = min(self.rate * self.burst_ms / 1000, self._tokens + self.rate * elapsed / 1000)
            self._last_ms = now_ms

    def take(self, size: int, now_ms: int | None = None) -> bool:
        """Take ``size`` bytes if there are that many; False (and counted) if not."""
        self._refill(monotonic_ms() if now_ms is None else now_ms)
        if self._tokens >= size:
            self._tokens -= size
            return True
        self.refused += size
        return False
