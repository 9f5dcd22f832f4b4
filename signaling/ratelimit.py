"""A token bucket per connection."""

from __future__ import annotations

import time


class TokenBucket:
    def __init__(self, rate_per_second: float, burst: int, clock: "type[time.monotonic] | None" = None) -> None:
        self.rate = rate_per_second
        self.burst = float(burst)
        self.tokens = float(burst)
        self._clock = clock or time.monotonic
        self._last = self._clock()
        #: Consecutive refusals; a client that keeps hammering is disconnected.
        self.refused_in_a_row = 0

    def take(self) -> bool:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        return False
