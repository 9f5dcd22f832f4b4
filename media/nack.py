"""Upstream loss recovery: which sequence numbers of a publisher's stream to NACK, and when."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Missing:
    first_ms: int
    sent_ms: int = -1
    retries: int = 0


class NackTracker:
    """Tracks holes in a stream's sequence numbers and schedules (re)sent NACKs.

    A hole is NACKed at once, then again every ``max(rtt, min_retry_ms)`` until it is filled,
    ``max_retries`` NACKs were sent, or it is older than ``max_age_ms``. More than
    ``max_missing`` holes at once (a burst or a jump) resets tracking and asks for a keyframe.
    """

    def __init__(
        self,
        *,
        max_age_ms: int = 1000,
        max_retries: int = 8,
        max_missing: int = 512,
        min_retry_ms: int = 20,
    ) -> None:
        self.max_age_ms = max_age_ms
        self.max_retries = max_retries
        self.max_missing = max_missing
        self.min_retry_ms = min_retry_ms
        self.max_seq = -1
        self.missing: dict[int, _Missing] = {}
        self.recovered = 0
        self.unrecovered = 0
        self.keyframe_needed = False

    def add(self, seq: int, now_ms: int) -> bool:
        """Account a received packet; True when it opened new holes."""
        if self.max_seq < 0:
            self.max_seq = seq
            return False
        delta = (seq - self.max_seq) & 0xFFFF
        if delta == 0:
            return False
        if delta >= 0x8000:
            if self.missing.pop(seq, None) is not None:
                self.recovered += 1
            return False
        self.max_seq = seq
        if delta == 1:
            return False
        if delta - 1 + len(self.missing) > self.max_missing:
            self.unrecovered += len(self.missing) + delta - 1
            self.missing.clear()
            self.keyframe_needed = True
            return False
        for i in range(1, delta):
            self.missing[(seq - delta + i) & 0xFFFF] = _Missing(now_ms)
        return True

    def due(self, now_ms: int, rtt_ms: float) -> list[int]:
        """Sequence numbers to NACK now, in stream order; gives up on stale holes."""
        retry_ms = max(self.min_retry_ms, int(rtt_ms))
        out: list[int] = []
        for seq, entry in list(self.missing.items()):
            if now_ms - entry.first_ms > self.max_age_ms or entry.retries >= self.max_retries:
                del self.missing[seq]
                self.unrecovered += 1
                self.keyframe_needed = True
                continue
            if entry.sent_ms < 0 or now_ms - entry.sent_ms >= retry_ms:
                entry.sent_ms = now_ms
                entry.retries += 1
                out.append(seq)
        top = self.max_seq
        out.sort(key=lambda s: (s - top) & 0xFFFF)
        return out
