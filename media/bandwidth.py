"""How much a site's downlink carries: a bandwidth estimator per receiving connection.

:class:`BandwidthEstimator` is the interface the site's budget (:mod:`media.site_budget`) uses, so a
transport-wide congestion control estimator (TWCC feedback, send-side delay gradient) can replace
the one here without touching the budget. :class:`RembLossEstimator` is the minimum of two caps:

- a delay-based cap from the browser's REMB (Chromium sends it for a connection that negotiated
  ``goog-remb`` and abs-send-time and not transport-cc, which is what aiortc offers). REMB is the
  receiver's AIMD estimate: on overuse (queues growing) it falls to ~0.85 of what arrives, but
  while the sender is application-limited it only creeps up to ~1.5 times what arrives. So a REMB
  *falling* by more than 15 % sets the cap (a congestion signal), a REMB above the cap raises it, and
  a REMB below the cap without a fall is only a receiver that has not seen enough traffic yet;
  a successful probe (:meth:`on_probe`) raises the cap to the rate the link carried.
- a loss-based cap from the receiver reports (the loss half of Google congestion control,
  draft-ietf-rmcat-gcc-02 §6): none until loss is seen; above 10 % loss the cap falls to what was
  sent less half the loss per second (a congestion signal), below 2 % it grows 8 % per second up
  to 1.5 times what was sent, in between it holds.
"""

from __future__ import annotations

from typing import Protocol

#: Loss-based control thresholds (fraction of packets).
HIGH_LOSS = 0.10
LOW_LOSS = 0.02
#: Estimate before any feedback: enough for audio and a stage picture at its base layer.
DEFAULT_START_BPS = 600_000
MIN_BPS = 30_000
MAX_BPS = 50_000_000
#: Receiver reports older than this no longer count towards the loss.
_REPORT_AGE_MS = 3000
_REMB_AGE_MS = 5000


class BandwidthEstimator(Protocol):
    """A site's downlink estimate, fed with the site's RTCP and what is sent to it."""

    def on_remb(self, bitrate: int, now_ms: int, source: int = 0) -> None: ...

    def on_report(self, ssrc: int, fraction_lost: int, now_ms: int, highest_sequence: int = -1) -> None: ...

    def on_sent(self, bitrate: int, now_ms: int) -> None: ...

    def on_probe(self, bitrate: int, now_ms: int) -> None: ...

    def estimate(self, now_ms: int) -> int: ...

    @property
    def loss(self) -> float: ...

    @property
    def last_congestion_ms(self) -> int: ...


class RembLossEstimator:
    """min(delay-based cap from REMB, loss-based cap); see the module docstring."""

    def __init__(self, start_bps: int = DEFAULT_START_BPS) -> None:
        if not MIN_BPS <= start_bps <= MAX_BPS:
            raise ValueError(f"a start estimate is {MIN_BPS}..{MAX_BPS} bit/s, not {start_bps}")
        self.remb: int | None = None
        self._rembs: dict[int, tuple[int, int]] = {}  # source -> (bit/s, received ms)
        self.delay_cap = start_bps
        self.loss_cap = MAX_BPS  # no limit until loss is seen
        self.sent_bps = 0
        self._last_congestion_ms = -(10**9)
        #: ssrc -> (fraction lost 0..255, received ms, packets it speaks for)
        self._reports: dict[int, tuple[int, int, int]] = {}
        self._highest: dict[int, int] = {}
        self._news = False  # a report came since the loss cap last moved
        self._last_loss_update_ms: int | None = None
        self._loss = 0.0

    @property
    def loss(self) -> float:
        """The site's recent loss (0..1): mean of its streams' last receiver reports."""
        return self._loss

    @property
    def last_congestion_ms(self) -> int:
        return self._last_congestion_ms

    def on_remb(self, bitrate: int, now_ms: int, source: int = 0) -> None:
        """A REMB from ``source`` (the RTCP sender SSRC). Chromium sends one REMB for the whole
        connection; aiortc one per receiving m-line, each for its own stream: the connection's REMB
        is the sum of every source's latest (a source silent for :data:`_REMB_AGE_MS` no longer
        counts), and a fall of one source is the congestion signal."""
        if bitrate <= 0:
            return
        bitrate = min(bitrate, MAX_BPS)
        previous = self._rembs.get(source)
        self._rembs[source] = (bitrate, now_ms)
        self._rembs = {s: v for s, v in self._rembs.items() if now_ms - v[1] <= _REMB_AGE_MS}
        self.remb = total = min(MAX_BPS, sum(b for b, _ in self._rembs.values()))
        if previous is not None and bitrate < previous[0] * 0.85:
            self.delay_cap = max(MIN_BPS, min(self.delay_cap, total))
            self._last_congestion_ms = now_ms
        elif total > self.delay_cap:
            self.delay_cap = total

    def on_report(self, ssrc: int, fraction_lost: int, now_ms: int, highest_sequence: int = -1) -> None:
        """A report block of one of the site's streams. With ``highest_sequence`` (the extended
        highest sequence number) the block weighs as many packets as the stream sent since its last
        report: a stream of a few packets (a slot that just resumed) does not speak for the site."""
        if not 0 <= fraction_lost <= 255:
            raise ValueError(f"fraction lost is 0..255, not {fraction_lost}")
        weight = 1
        if highest_sequence >= 0:
            previous = self._highest.get(ssrc)
            self._highest[ssrc] = highest_sequence
            weight = highest_sequence - previous if previous is not None and 0 < highest_sequence - previous < 65536 else 0
        self._reports[ssrc] = (fraction_lost, now_ms, weight)
        self._news = True

    def on_sent(self, bitrate: int, now_ms: int) -> None:
        """What the site was sent over the last interval (bit/s): caps the loss-based growth."""
        self.sent_bps = max(0, bitrate)

    def on_probe(self, bitrate: int, now_ms: int) -> None:
        """The link carried ``bitrate`` for a probe's length without a congestion signal."""
        bitrate = min(bitrate, MAX_BPS)
        self.delay_cap = max(self.delay_cap, bitrate)
        self.loss_cap = max(self.loss_cap, bitrate)

    def _update_loss(self, now_ms: int) -> None:
        self._reports = {s: v for s, v in self._reports.items() if now_ms - v[1] <= _REPORT_AGE_MS}
        fresh = list(self._reports.values())
        weight = sum(w for _, _, w in fresh)
        self._loss = sum(f * w for f, _, w in fresh) / weight / 256 if weight else 0.0
        if not self._news:
            return  # the cap moves on new reports only (one bad report is one step, not three)
        self._news = False
        last = self._last_loss_update_ms
        self._last_loss_update_ms = now_ms
        if last is None or not fresh:
            return
        seconds = max(0.0, min(2.0, (now_ms - last) / 1000))
        loss = self._loss
        if loss > HIGH_LOSS:
            base = min(self.loss_cap, self.sent_bps) if self.sent_bps else self.loss_cap
            self.loss_cap = int(base * (1 - 0.5 * loss) ** seconds)
            self._last_congestion_ms = now_ms
        elif loss < LOW_LOSS:
            ceiling = max(self.loss_cap, int(1.5 * self.sent_bps))
            self.loss_cap = min(ceiling, int(self.loss_cap * (1.08**seconds)))
        self.loss_cap = max(MIN_BPS, min(MAX_BPS, self.loss_cap))

    def estimate(self, now_ms: int) -> int:
        """The estimate now (bit/s); call about twice a second (the loss cap moves with time)."""
        self._update_loss(now_ms)
        return max(MIN_BPS, min(self.delay_cap, self.loss_cap))
