"""How much a site's downlink carries: a bandwidth estimator per receiving connection.

:class:`BandwidthEstimator` is the interface the site's budget (:mod:`media.site_budget`) uses, so a
transport-wide congestion control estimator (TWCC feedback, send-side delay gradient) can replace
the one here without touching the budget. :class:`RembLossEstimator` is the minimum of two caps:

- a delay-based cap from the browser's REMB (Chromium sends it for a connection that negotiated
  ``goog-remb`` and abs-send-time and not transport-cc, which is what aiortc offers). REMB is the
  receiver's AIMD estimate: on overuse (queues growing) it falls to ~0.85 of what arrives, but
  while the sender is application-limited it only creeps up to ~1.5 times what arrives. So a REMB
  *falling* by more than 15 % sets the cap (a congestion signal), a REMB above the cap raises it (to
  1.5 times the media sent at most: Chromium's first REMB, before it measured anything, can say
  3 Mbit/s of a 1 Mbit/s link), and
  a REMB below the cap without a fall is only a receiver that has not seen enough traffic yet,
  unless it stays under a quarter of what is sent (:data:`STARVED_REMB`: a link that carries a
  fraction of it, whose receiver reports say nothing: a stream none of whose packets arrive
  reports no loss);
  a successful probe (:meth:`on_probe`) raises the cap to the rate the link carried. A fall cuts
  the cap to the REMB but no lower than 0.85 of the media sent in the last :data:`SENT_WINDOW_MS`
  (GCC's decrease: 0.85 of the throughput): Chromium's REMB after an overuse is 0.85 of what *it*
  received in its window, which after a quiet spell (a stream paused, audio only) is far below what
  the link carries; on a 1 Mbit/s link with 5 % loss and jitter its REMB stayed at 300-500 kbit/s
  while 600-1000 kbit/s arrived. Congestion that persists shows as loss, which the loss cap answers.
- a loss-based cap from the receiver reports (the loss half of Google congestion control,
  draft-ietf-rmcat-gcc-02 §6): none until loss is seen; above 10 % loss the cap falls to what was
  sent less half the loss per second (a congestion signal; above :data:`DELIVERED_LOSS` at once to 0.85
  of what got through), below 2 % it grows 8 % per second up
  to 1.5 times what was sent, in between it holds. The cap steps once per :data:`LOSS_STEP_PACKETS`
  packets reported (or :data:`LOSS_STEP_MS`), on their loss: one report of an audio stream
  (~50 packets) is too noisy to tell a 5 % link from a congested one, and a loss counted in two
  steps would cut twice; at 5 % random loss a step of 100 packets says more than 10 % one time in
  35, one of 300 one time in 4000. The loss shown (:attr:`loss`) is that of the last :data:`LOSS_WINDOW_MS`.

Silence is a signal too. A connection receiving video gets Chromium's receiver reports at least once
a second; when none has come for :data:`SILENCE_MS` while more than :data:`SILENCE_MIN_MEDIA_BPS`
was sent, the link is taken to be drowning (a 64 kbit/s site, whose reports are lost with the rest,
learns nothing from reports for seconds): the delay cap halves from what was sent, and again every
:data:`SILENCE_STEP_MS` while the silence lasts. A site receiving audio only reports every 5 s, which
is why little media does not count.

A probe (:meth:`on_probe_start` .. :meth:`on_probe_end`, plus :data:`PROBE_GRACE_MS` for the
feedback to come back) that overshoots the link makes the REMB fall, typically to 0.85 of what
arrived *before* the probe (the receiver's throughput window still holds it), below a rate the link
carried. A fall then is the probe's failure: the cap goes back to what was sent before the probe,
not below it. A fall after the grace is honoured as it is.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

#: Loss-based control thresholds (fraction of packets).
HIGH_LOSS = 0.10
LOW_LOSS = 0.02
#: Estimate before any feedback: enough for audio and a stage picture at its base layer.
DEFAULT_START_BPS = 600_000
MIN_BPS = 30_000
MAX_BPS = 50_000_000
#: The loss shown is that of the receiver reports of this long.
LOSS_WINDOW_MS = 2500
#: The loss cap steps once this many packets were reported since its last step, or this long after.
LOSS_STEP_PACKETS = 300
LOSS_STEP_MS = 3000
#: ...or on this many packets when they lost this much (no random loss of a usable link does).
LOSS_FAST_PACKETS = 50
LOSS_FAST = 0.25
#: After a REMB fall cut the cap, further falls within this long are the same episode (Chromium's
#: next REMB is 0.85 of what arrived meanwhile, which the cut itself lowered: cut on it and the
#: estimate spirals down on a link whose jitter its overuse detector takes for queues).
REMB_HOLDOFF_MS = 4000
#: A source's REMBs fall as its estimator warms up (255, then 206 kbit/s of a link carrying 480):
#: no fall counts for this long after its first REMB.
REMB_WARMUP_MS = 5000
#: Loss over this confirms a REMB below the cap: the cap goes down to it (a fall to 300 kbit/s or a
#: 64 kbit/s site loses most of what is sent; an overshoot of a 5 % link 10-17 %).
REMB_CONFIRM_LOSS = 0.2
#: Loss over this is not a link's own nor a probe's overshoot (1.5 times a link loses a third): the
#: loss cap falls at once to 0.85 of what got through, sent x (1 - loss), with no probe floor.
DELIVERED_LOSS = 0.4
DELIVERED_HOLDOFF_MS = 3000
#: REMBs below this share of the media sent for STARVED_MS set the cap, warm-up or not: Chromium's
#: REMB read 5 kbit/s on a 64 kbit/s link sent 500 (its noise on a 1 Mbit/s link: 0.4-0.5 of it).
STARVED_REMB = 0.25
STARVED_MS = 1500
#: A stream whose highest sequence stood still this long while this many packets were sent stalled.
STALL_MS = 1500
STALL_PACKETS = 30
#: A REMB above the cap raises it to this many times the media sent (over SENT_WINDOW_MS) at most.
REMB_OVER_SENT = 1.5
#: A REMB fall cuts the cap no lower than this share of the media sent over the last SENT_WINDOW_MS.
THROUGHPUT_BACKOFF = 0.85
SENT_WINDOW_MS = 2000
#: After a probe ends, its feedback may still come back this long (a round trip, a report interval, and
#: the LOSS_STEP_MS a loss step may wait for its packets).
PROBE_GRACE_MS = 3500
#: No feedback this long while sending video: halve the delay cap, and again every SILENCE_STEP_MS.
SILENCE_MS = 2500
SILENCE_STEP_MS = 1000
SILENCE_MIN_MEDIA_BPS = 100_000
_REMB_AGE_MS = 5000


class BandwidthEstimator(Protocol):
    """A site's downlink estimate, fed with the site's RTCP and what is sent to it."""

    def on_remb(self, bitrate: int, now_ms: int, source: int = 0) -> None: ...

    def on_report(self, ssrc: int, fraction_lost: int, now_ms: int, highest_sequence: int = -1,
                  sent_packets: int = -1) -> None: ...

    def on_sent(self, bitrate: int, now_ms: int, media_bps: int | None = None) -> None: ...

    def on_probe(self, bitrate: int, now_ms: int) -> None: ...

    def on_probe_start(self, base_bps: int, now_ms: int) -> None: ...

    def on_probe_end(self, now_ms: int) -> None: ...

    def estimate(self, now_ms: int) -> int: ...

    @property
    def loss(self) -> float: ...

    @property
    def last_congestion_ms(self) -> int: ...

    @property
    def last_feedback_ms(self) -> int: ...


class RembLossEstimator:
    """min(delay-based cap from REMB, loss-based cap); see the module docstring."""

    def __init__(self, start_bps: int = DEFAULT_START_BPS, *, remb_warmup_ms: int = REMB_WARMUP_MS) -> None:
        if not MIN_BPS <= start_bps <= MAX_BPS:
            raise ValueError(f"a start estimate is {MIN_BPS}..{MAX_BPS} bit/s, not {start_bps}")
        self.remb: int | None = None
        self._rembs: dict[int, tuple[int, int]] = {}  # source -> (bit/s, received ms)
        self.delay_cap = start_bps
        self.loss_cap = MAX_BPS  # no limit until loss is seen
        self.sent_bps = 0
        self._last_remb_cut_ms = -(10**9)
        self._last_feedback_ms = -(10**9)
        self._last_silence_cut_ms = -(10**9)
        self._starved_since_ms: int | None = None
        self._last_delivered_cut_ms = -(10**9)
        self._remb_first_ms: dict[int, int] = {}
        self.remb_warmup_ms = remb_warmup_ms
        self._media_sent: deque[tuple[int, int, int]] = deque(maxlen=64)  # (ms, bit/s, media bit/s) per interval
        self._last_congestion_ms = -(10**9)
        #: (received ms, fraction lost 0..255, packets it speaks for) of every recent report
        self._reports: deque[tuple[int, int, int]] = deque(maxlen=512)
        self._highest: dict[int, int] = {}
        self._stalls: dict[int, tuple[int, int, int]] = {}  # ssrc -> (highest sequence, sent then, ms)
        self._probe_base: int | None = None  # what was sent before the probe running (or in its grace)
        self._probe_until_ms: int | None = None
        self._step_lost = 0.0  # packets lost / reported since the loss cap last stepped
        self._step_packets = 0
        self._step_since_ms: int | None = None
        self._last_loss_update_ms: int | None = None
        self._loss = 0.0

    def __repr__(self) -> str:
        return (f"RembLossEstimator(remb={self.remb and self.remb // 1000} delay_cap={self.delay_cap // 1000} "
                f"loss_cap={self.loss_cap // 1000} loss={self._loss:.3f} kbit/s)")

    @property
    def loss(self) -> float:
        """The site's recent loss (0..1): of its reports of the last :data:`LOSS_WINDOW_MS`, by packets."""
        return self._loss

    @property
    def last_congestion_ms(self) -> int:
        return self._last_congestion_ms

    @property
    def last_feedback_ms(self) -> int:
        """When the last REMB or receiver report came (a probe without any learned nothing)."""
        return self._last_feedback_ms

    def on_remb(self, bitrate: int, now_ms: int, source: int = 0) -> None:
        """A REMB from ``source`` (the RTCP sender SSRC). Chromium sends one REMB for the whole
        connection; aiortc one per receiving m-line, each for its own stream: the connection's REMB
        is the sum of every source's latest (a source silent for :data:`_REMB_AGE_MS` no longer
        counts), and a fall of one source is the congestion signal."""
        if bitrate <= 0:
            return
        bitrate = min(bitrate, MAX_BPS)
        self._last_feedback_ms = now_ms
        previous = self._rembs.get(source)
        self._rembs[source] = (bitrate, now_ms)
        first = self._remb_first_ms.setdefault(source, now_ms)
        self._rembs = {s: v for s, v in self._rembs.items() if now_ms - v[1] <= _REMB_AGE_MS}
        self.remb = total = min(MAX_BPS, sum(b for b, _ in self._rembs.values()))
        if total < STARVED_REMB * self._recent_media(now_ms):
            # a fraction of what is sent arrives: no jitter reads like that, warm-up or not
            if self._starved_since_ms is None:
                self._starved_since_ms = now_ms
            elif now_ms - self._starved_since_ms >= STARVED_MS and total < self.delay_cap:
                self.delay_cap = max(MIN_BPS, total)
                self._last_congestion_ms = now_ms
                return
        else:
            self._starved_since_ms = None
        if previous is not None and bitrate < previous[0] * 0.85:
            if now_ms - first < self.remb_warmup_ms or now_ms - self._last_remb_cut_ms < REMB_HOLDOFF_MS:
                return  # the same episode: the last cut has not reached the receiver's window yet
            self._last_remb_cut_ms = now_ms
            floor = max(total, self._probe_floor(now_ms))
            if self._loss <= REMB_CONFIRM_LOSS:  # no loss says the link is slower than what was sent: GCC's decrease
                floor = max(floor, int(THROUGHPUT_BACKOFF * self._recent_media(now_ms)))
            self.delay_cap = max(MIN_BPS, min(self.delay_cap, floor))
            self._last_congestion_ms = now_ms
        elif total > self.delay_cap:
            # a REMB is at most ~1.5 x what arrives; above that it is the receiver's start value
            self.delay_cap = max(self.delay_cap, min(total, int(REMB_OVER_SENT * self._recent_media(now_ms))))

    def on_report(self, ssrc: int, fraction_lost: int, now_ms: int, highest_sequence: int = -1,
                  sent_packets: int = -1) -> None:
        """A report block of one of the site's streams. With ``highest_sequence`` (the extended
        highest sequence number) the block weighs as many packets as the stream sent since its last
        report: a stream of a few packets (a slot that just resumed) does not speak for the site.

        ``sent_packets`` (how many packets the stream was sent so far) shows a stalled stream:
        a receiver none of whose packets arrive reports no loss (nothing was expected since its
        highest sequence), so a highest sequence that stood still for :data:`STALL_MS` while
        :data:`STALL_PACKETS` or more were sent counts those packets as lost."""
        if not 0 <= fraction_lost <= 255:
            raise ValueError(f"fraction lost is 0..255, not {fraction_lost}")
        weight = LOSS_STEP_PACKETS  # a report without its sequence numbers speaks for a step's worth
        if highest_sequence >= 0:
            previous = self._highest.get(ssrc)
            self._highest[ssrc] = highest_sequence
            weight = highest_sequence - previous if previous is not None and 0 < highest_sequence - previous < 65536 else 0
            if sent_packets >= 0:
                stall = self._stalls.get(ssrc)
                if stall is None or stall[0] != highest_sequence or sent_packets < stall[1]:
                    self._stalls[ssrc] = (highest_sequence, sent_packets, now_ms)
                elif now_ms - stall[2] >= STALL_MS and sent_packets - stall[1] >= STALL_PACKETS:
                    weight, fraction_lost = sent_packets - stall[1], 255
                    self._stalls[ssrc] = (highest_sequence, sent_packets, now_ms)  # each packet counts once
        self._reports.append((now_ms, fraction_lost, weight))
        self._last_feedback_ms = now_ms
        if weight:
            self._step_lost += fraction_lost * weight / 256
            self._step_packets += weight
            if self._step_since_ms is None:
                self._step_since_ms = now_ms

    def on_sent(self, bitrate: int, now_ms: int, media_bps: int | None = None) -> None:
        """What the site was sent over the last interval (bit/s; ``media_bps``: of it, media and
        retransmissions, without probe padding): caps the loss-based growth, floors a REMB fall."""
        self.sent_bps = max(0, bitrate)
        self._media_sent.append((now_ms, self.sent_bps, max(0, bitrate if media_bps is None else media_bps)))

    def _recent_media(self, now_ms: int) -> int:
        rates = [bps for ms, _, bps in self._media_sent if now_ms - ms <= SENT_WINDOW_MS]
        return sum(rates) // len(rates) if rates else 0

    def _peak_sent(self, since_ms: int) -> int:
        """The most sent (padding included) in an interval since ``since_ms``."""
        return max((bps for ms, bps, _ in self._media_sent if ms >= since_ms), default=0)

    def on_probe(self, bitrate: int, now_ms: int) -> None:
        """The link carried ``bitrate`` for a probe's length without a congestion signal."""
        bitrate = min(bitrate, MAX_BPS)
        self.delay_cap = max(self.delay_cap, bitrate)
        self.loss_cap = max(self.loss_cap, bitrate)

    def on_probe_start(self, base_bps: int, now_ms: int) -> None:
        """A probe starts; ``base_bps`` was sent before it (see the module docstring)."""
        self._probe_base, self._probe_until_ms = max(0, base_bps), None

    def on_probe_end(self, now_ms: int) -> None:
        if self._probe_base is not None and self._probe_until_ms is None:
            self._probe_until_ms = now_ms + PROBE_GRACE_MS

    def _probe_floor(self, now_ms: int) -> int:
        """What was sent before the probe running or in its grace (0: none): a cap cut for a
        congestion signal now goes no lower (the probe overshot; see the module docstring)."""
        if self._probe_base is None:
            return 0
        if self._probe_until_ms is not None and now_ms > self._probe_until_ms:
            self._probe_base = None
            return 0
        return self._probe_base

    def _update_loss(self, now_ms: int) -> None:
        reports = self._reports
        while reports and now_ms - reports[0][0] > LOSS_WINDOW_MS:
            reports.popleft()
        weight = sum(w for _, _, w in reports)
        self._loss = sum(f * w for _, f, w in reports) / weight / 256 if weight else 0.0
        if self._loss > REMB_CONFIRM_LOSS and self.remb is not None and self.remb < self.delay_cap:
            # the loss confirms the receiver's estimate: the link is that slow (a fall, a 64 kbit/s site)
            self.delay_cap = max(MIN_BPS, self.remb)
            self._last_congestion_ms = now_ms
        packets, since = self._step_packets, self._step_since_ms
        heavy = packets >= LOSS_FAST_PACKETS and self._step_lost / packets >= LOSS_FAST
        if not packets or since is None or (packets < LOSS_STEP_PACKETS and now_ms - since < LOSS_STEP_MS
                                            and not heavy):
            return  # the cap moves on enough new reports only (each packet's loss counts in one step)
        loss = self._step_lost / packets
        self._step_lost, self._step_packets, self._step_since_ms = 0.0, 0, None
        last = self._last_loss_update_ms
        self._last_loss_update_ms = now_ms
        seconds = 1.0 if last is None else max(0.0, min(2.0, (now_ms - last) / 1000))
        if loss > DELIVERED_LOSS:
            # far over the link (a probe of 1.5x loses a third at most): it carries what got through.
            # The reports speak of packets sent up to a round trip ago, at the rate before any cut
            # (the most sent since a round trip before the first of them), and the next ones of the
            # same overload: one cut.
            self._last_congestion_ms = now_ms
            if now_ms - self._last_delivered_cut_ms >= DELIVERED_HOLDOFF_MS:
                self._last_delivered_cut_ms = now_ms
                sent = self._peak_sent(min(since, now_ms - SENT_WINDOW_MS) - SENT_WINDOW_MS // 2) or self.sent_bps
                base = min(self.loss_cap, sent) if sent else self.loss_cap
                self.loss_cap = int(THROUGHPUT_BACKOFF * base * (1 - loss))
        elif loss > HIGH_LOSS:
            base = min(self.loss_cap, self.sent_bps) if self.sent_bps else self.loss_cap
            cut = int(base * (1 - 0.5 * loss) ** seconds)
            self.loss_cap = max(cut, min(self.loss_cap, self._probe_floor(now_ms)))
            self._last_congestion_ms = now_ms
        elif loss < LOW_LOSS:
            ceiling = max(self.loss_cap, int(1.5 * self.sent_bps))
            self.loss_cap = min(ceiling, int(self.loss_cap * (1.08**seconds)))
        self.loss_cap = max(MIN_BPS, min(MAX_BPS, self.loss_cap))

    def _check_silence(self, now_ms: int) -> None:
        """Halve the delay cap when feedback stopped while video was sent (see the module docstring)."""
        if self._last_feedback_ms < 0 or now_ms - self._last_feedback_ms < SILENCE_MS \
                or now_ms - self._last_silence_cut_ms < SILENCE_STEP_MS:
            return
        media = self._recent_media(now_ms)
        if media <= SILENCE_MIN_MEDIA_BPS:
            return
        self._last_silence_cut_ms = self._last_congestion_ms = now_ms
        self.delay_cap = max(MIN_BPS, min(self.delay_cap, media) // 2)

    def estimate(self, now_ms: int) -> int:
        """The estimate now (bit/s); call about twice a second (the loss cap moves with time)."""
        self._update_loss(now_ms)
        self._check_silence(now_ms)
        return max(MIN_BPS, min(self.delay_cap, self.loss_cap))
