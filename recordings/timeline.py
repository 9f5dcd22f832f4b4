"""A track's clock: RTP timestamps to milliseconds on the recording's time line.

Every file of a recording counts milliseconds from one origin, the recording's start (a
monotonic instant, with its UTC time in the manifest). A track maps its RTP timestamps onto that
line through an *anchor*: (RTP timestamp, arrival instant) of its first frame; later frames are
placed by their RTP timestamp, so the sender's own timing (and its silences, DTX, paused
cameras) is kept exactly, not squeezed out. When the RTP clock and the arrival clock disagree by
more than ``reanchor_ms`` (the sender restarted its clock, or sent nothing and resumed with
stale timestamps), the track re-anchors at the arrival instant; each anchor, and each sender
report (NTP <-> RTP), is kept for the manifest so the mapping can be checked afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

#: Past this disagreement between RTP time and arrival time, the track re-anchors.
DEFAULT_REANCHOR_MS = 1000
#: Sender reports kept per track (the first ones, then one per ``SR_EVERY_MS``).
SR_EVERY_MS = 10_000


@dataclass(frozen=True)
class Anchor:
    #: Unwrapped RTP timestamp.
    rtp_timestamp: int
    #: Milliseconds on the recording's time line.
    media_ms: int
    #: Why: "first" (the first frame) or "reanchor" (RTP and arrival time disagreed).
    reason: str


@dataclass(frozen=True)
class SenderReportAnchor:
    #: NTP time (64-bit fixed point) and the RTP timestamp the sender paired with it.
    ntp_timestamp: int
    rtp_timestamp: int
    #: When it arrived, on the recording's time line.
    media_ms: int


@dataclass
class TrackClock:
    """RTP timestamp -> media milliseconds for one track."""

    clock_rate: int
    #: Monotonic milliseconds of the recording's origin.
    origin_ms: int
    reanchor_ms: int = DEFAULT_REANCHOR_MS
    anchors: list[Anchor] = field(default_factory=list)
    sender_reports: list[SenderReportAnchor] = field(default_factory=list)
    #: Told of every anchor and kept sender report as it is made ("anchor" | "sender_report", fields):
    #: the recorder journals them, so a crash does not lose the time line's evidence.
    listener: Callable[[str, dict[str, Any]], None] | None = None
    _last_rtp: int | None = None
    _unwrapped: int = 0
    _anchor_rtp: int = 0
    _anchor_ms: int = 0
    _last_ms: int = -1

    def _unwrap(self, timestamp: int) -> int:
        if self._last_rtp is None:
            self._unwrapped = timestamp
        else:
            step = (timestamp - self._last_rtp) & 0xFFFFFFFF
            if step >= 0x80000000:
                step -= 0x100000000
            self._unwrapped += step
        self._last_rtp = timestamp
        return self._unwrapped

    def media_ms(self, timestamp: int, arrival_ms: int) -> int:
        """Where a frame with RTP ``timestamp`` that arrived at ``arrival_ms`` (monotonic) goes:
        never before the previous frame of the track."""
        rtp = self._unwrap(timestamp)
        arrived = arrival_ms - self.origin_ms
        if not self.anchors:
            self._set_anchor(rtp, max(arrived, 0), "first")
        placed = self._anchor_ms + (rtp - self._anchor_rtp) * 1000 // self.clock_rate
        if abs(placed - arrived) > self.reanchor_ms:
            self._set_anchor(rtp, max(arrived, 0), "reanchor")
            placed = self._anchor_ms
        placed = max(placed, self._last_ms)
        self._last_ms = placed
        return placed

    def _set_anchor(self, rtp: int, media_ms: int, reason: str) -> None:
        self._anchor_rtp, self._anchor_ms = rtp, media_ms
        anchor = Anchor(rtp, media_ms, reason)
        self.anchors.append(anchor)
        if self.listener is not None:
            self.listener("anchor", asdict(anchor))

    def add_sender_report(self, ntp_timestamp: int, rtp_timestamp: int, now_ms: int) -> None:
        media = now_ms - self.origin_ms
        reports = self.sender_reports
        if len(reports) < 3 or media - reports[-1].media_ms >= SR_EVERY_MS:
            report = SenderReportAnchor(ntp_timestamp, rtp_timestamp, media)
            reports.append(report)
            if self.listener is not None:
                self.listener("sender_report", asdict(report))

    @property
    def last_ms(self) -> int:
        return self._last_ms
