"""Round-trip time of an outgoing stream from its sender reports (RFC 3550 6.4.1).

A stream remembers the last few SRs it sent (their middle 32 NTP bits, LSR, and when); a receiver's
report block echoing one of them (LSR, and DLSR: how long it held it) gives the round trip.
"""

from __future__ import annotations

from collections import deque

from .rtcp import ReportBlock
from .rtp_packet import monotonic_ms


class RoundTrip:
    def __init__(self, remembered: int = 8) -> None:
        self._sent: deque[tuple[int, int]] = deque(maxlen=remembered)

    def sent(self, ntp_timestamp: int) -> None:
        """An SR with this NTP timestamp goes out now (a repeat of the last one is not re-stamped)."""
        lsr = (ntp_timestamp >> 16) & 0xFFFFFFFF
        if not self._sent or self._sent[-1][0] != lsr:
            self._sent.append((lsr, monotonic_ms()))

    def measure(self, block: ReportBlock) -> float | None:
        """The round trip in ms the block shows, or None (no SR echoed, one we no longer know, or < 0)."""
        if not block.lsr:
            return None
        for lsr, sent_ms in self._sent:
            if lsr == block.lsr:
                rtt = monotonic_ms() - sent_ms - block.dlsr * 1000 / 65536
                return rtt if rtt >= 0 else None
        return None
