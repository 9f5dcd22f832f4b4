"""Reception statistics of one incoming RTP stream (RFC 3550 appendix A.1, A.3, A.8)."""

from __future__ import annotations

from .rtcp import ReportBlock


class ReceiveStats:
    """Sequence tracking, loss and interarrival jitter of a stream, for receiver reports."""

    __slots__ = (
        "clock_rate",
        "base_seq",
        "max_seq",
        "cycles",
        "received",
        "duplicates",
        "_jitter",
        "_last_transit",
        "_expected_prior",
        "_received_prior",
    )

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.base_seq = -1
        self.max_seq = -1
        self.cycles = 0
        self.received = 0
        self.duplicates = 0
        self._jitter = 0.0
        self._last_transit: float | None = None
        self._expected_prior = 0
        self._received_prior = 0

    def add(self, seq: int, timestamp: int, arrival_ms: int) -> None:
        """Account one packet (original, not RTX)."""
        self.received += 1
        if self.max_seq < 0:
            self.base_seq = self.max_seq = seq
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if delta == 0:
                self.duplicates += 1
                return
            if delta >= 0x8000:
                return  # late or retransmitted packet: counted, no jitter update
            if seq < self.max_seq:
                self.cycles += 0x10000
            self.max_seq = seq
        transit = arrival_ms * self.clock_rate / 1000.0 - timestamp
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            if d < self.clock_rate * 10:  # ignore timestamp jumps
                self._jitter += (d - self._jitter) / 16.0
        self._last_transit = transit

    @property
    def extended_max_seq(self) -> int:
        return self.cycles + max(self.max_seq, 0)

    @property
    def expected(self) -> int:
        if self.max_seq < 0:
            return 0
        return self.extended_max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - (self.received - self.duplicates)

    @property
    def jitter(self) -> int:
        return int(self._jitter)

    def report_block(self, ssrc: int, lsr: int, dlsr: int) -> ReportBlock:
        """A report block; also starts the next fraction-lost interval."""
        expected = self.expected
        received = self.received - self.duplicates
        expected_interval = expected - self._expected_prior
        received_interval = received - self._received_prior
        self._expected_prior = expected
        self._received_prior = received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        return ReportBlock(
            ssrc=ssrc,
            fraction_lost=fraction,
            packets_lost=self.lost,
            highest_sequence=self.extended_max_seq,
            jitter=self.jitter,
            lsr=lsr,
            dlsr=dlsr,
        )
