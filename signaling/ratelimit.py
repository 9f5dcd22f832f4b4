"""The flood rule: a token bucket per connection, and the point past which a flooding client is cut off.

A connection may send ``rate_per_second`` messages per second on average, with bursts of up to
``rate_burst``. A message beyond that is answered ``rate_limited`` and changes nothing. A client that
keeps sending regardless, ``flood_disconnect_after`` refused messages in a row, is disconnected: its
last message is still answered ``rate_limited``, then it receives ``closing {code: "flooding"}`` and the
server closes the connection. One accepted message resets the count, so a client that backs off when
told to is never disconnected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class Verdict(Enum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    DISCONNECT = "disconnect"


class TokenBucket:
    def __init__(self, rate_per_second: float, burst: int, clock: Callable[[], float] | None = None) -> None:
        self.rate = rate_per_second
        self.burst = float(burst)
        self.tokens = float(burst)
        self._clock = clock or time.monotonic
        self._last = self._clock()
        #: Consecutive refusals since the last accepted message.
        self.refused_in_a_row = 0

    def take(self) -> bool:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        return False


class FloodRule:
    """Decides each incoming message: accept, refuse (``rate_limited``), or refuse and disconnect."""

    def __init__(self, rate_per_second: float, burst: int, disconnect_after: int,
                 clock: Callable[[], float] | None = None) -> None:
        self.bucket = TokenBucket(rate_per_second, burst, clock)
        self.disconnect_after = disconnect_after
        self.tripped = False

    def check(self) -> Verdict:
        if self.tripped:
            return Verdict.REFUSE
        if self.bucket.take():
            return Verdict.ACCEPT
        if self.bucket.refused_in_a_row >= self.disconnect_after:
            self.tripped = True
            return Verdict.DISCONNECT
        return Verdict.REFUSE
