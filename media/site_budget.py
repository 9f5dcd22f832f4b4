"""A site's budget: its downlink estimate shared among its slots, stepped down fast and up carefully.

One :class:`SiteBudget` per receiving connection (the transport creates it with the slots). Every
:data:`TICK_MS` it asks the estimator (:mod:`media.bandwidth`) for the site's estimate, spends
``share`` of it with :func:`media.allocation.allocate` (audio first, then the stage, then the
thumbnails) and applies the result to the slots (:meth:`media.slot.Slot.set_layer`):

- **down at once**: any slot whose allocation fell is lowered in the same tick (a congestion signal
  reaches the estimate within one RTCP interval, so the step is within ~1 s of it);
- **up only when quiet and probed**: after ``up_after_ms`` without congestion and without a step
  down, the budget *probes*: padding-only RTX packets (:meth:`media.slot.Slot.send_padding`) raise
  what the site receives to what the higher allocation would send, for ``probe_ms``; if no
  congestion signal came meanwhile, the higher allocation is applied; else it waits again.
  A video the page asks for again (a tile shown, a choice changed) is resumed without a probe.
  Until the first congestion signal or step down the link is unknown and, as far as anything
  says, good: probes come after 1 s and try 2.5 times the estimate, so a LAN site has its full
  video within seconds.

The site's choice (``auto`` / ``low`` / ``audio``) and what the page shows (:class:`SlotView`) are
requests: a slot they rule out is *paused on request*. The ``state`` event (:class:`SiteState`)
reports the estimate and every slot's state and layer when they change, and every
:data:`REPORT_MS` while anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .allocation import (
    DEFAULT_AUDIO_RATE,
    DEFAULT_VIDEO_RATES,
    MODES,
    PAUSED,
    Allocation,
    AudioDemand,
    Mode,
    SlotState,
    VideoDemand,
    allocate,
)
from .bandwidth import BandwidthEstimator, RembLossEstimator
from .byte_bucket import ByteBucket
from .events import EventEmitter
from .rtp_packet import monotonic_ms
from .slot import TOP_LAYER, Slot
from .slot_assignment import STAGE_AUDIO, STAGE_VIDEO
from .slot_set import SlotSet

logger = logging.getLogger(__name__)

TICK_MS = 500
PACE_MS = 25
REPORT_MS = 2000
DEFAULT_SHARE = 0.85
DEFAULT_UP_AFTER_MS = 5000
DEFAULT_PROBE_MS = 750
#: A probe tries the link at what the next step up needs (with this margin), at most at PROBE_STEP
#: times the estimate and at least MIN_PROBE_STEP times it (after a failure: MIN_PROBE_BPS above it).
PROBE_STEP = 1.5
MIN_PROBE_STEP = 1.15
PROBE_MARGIN = 1.1
MIN_PROBE_BPS = 30_000
#: Until the first congestion signal or step down: probe after this much quiet, this long, this far.
STARTUP_UP_AFTER_MS = 1000
STARTUP_PROBE_MS = 1000
STARTUP_PROBE_STEP = 2.0
#: An estimate held HELD_QUIET_MS without a congestion signal is what the link carried; for HELD_FOR_MS
#: after, probes that carry in a row double (up to it) instead of stepping: a link that came back.
HELD_QUIET_MS = 5000
HELD_FOR_MS = 120_000
#: After failed probes the wait doubles, up to this.
MAX_WAIT_MS = 15_000
#: The budget leaves room for the retransmissions of the site's loss (twice it: a retransmission
#: is lost too, and a frame waiting for one is followed by more), up to MAX_LOSS_RESERVE.
LOSS_RESERVE = 2.0
MAX_LOSS_RESERVE = 0.3
#: A probe's feedback (a round trip and a receiver report interval) is awaited this long after its padding.
PROBE_FEEDBACK_MS = 1000
#: After a step up, this long before a probe (the step's own keyframes are measured first).
UP_SETTLE_MS = 2500
#: Congestion this soon after a probe succeeded counts as the probe's failure.
PROBE_BLAME_MS = 6000
#: Retransmissions may take this share of the site's budget (and at least MIN_RTX_BPS).
RTX_SHARE = 0.25
MIN_RTX_BPS = 32_000
DEFAULT_RTX_BPS = 150_000
#: RED on the site's audio slots from this loss on, off after RED_OFF_MS below RED_OFF_LOSS.
RED_ON_LOSS = 0.03
RED_OFF_LOSS = 0.01
RED_OFF_MS = 10_000
#: An Opus packet of ~100 bytes with one redundant copy, per packet on the wire.
RED_RATE_FACTOR = 1.7


@dataclass(frozen=True)
class SlotView:
    """What the page shows of one slot: whether its tile is visible, and its size in CSS pixels."""

    visible: bool = True
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class SiteState:
    """The site's link as the budget sees it, for the page and the moderators' panels."""

    estimate: int
    budget: int
    sending: int
    loss: float
    mode: Mode
    probing: bool
    #: The site's audio carries RED redundancy.
    red: bool = False
    #: The site's round trip (ms): the least of its slots' last receiver reports (the path is the same,
    #: a report answered late is not), None before one came.
    rtt_ms: int | None = None
    #: slot id -> (state, layer forwarded: 0..2 video, 0 audio, -1 none)
    slots: dict[str, tuple[SlotState, int]] = field(default_factory=dict)

    def weak(self) -> bool:
        """Some stream is paused for want of bandwidth."""
        return any(state == "paused_bandwidth" for state, _ in self.slots.values())


class SiteBudget(EventEmitter):
    """See the module docstring. Events: ``state`` (SiteState), ``close`` ()."""

    def __init__(self, slot_set: SlotSet, estimator: BandwidthEstimator | None = None, *,
                 share: float = DEFAULT_SHARE, up_after_ms: int = DEFAULT_UP_AFTER_MS,
                 probe_ms: int = DEFAULT_PROBE_MS, clock: Callable[[], int] = monotonic_ms) -> None:
        super().__init__()
        if not 0.1 <= share <= 1.0:
            raise ValueError(f"a site's share of its estimate is 0.1..1, not {share}")
        self.slot_set = slot_set
        self.estimator: BandwidthEstimator = estimator or RembLossEstimator()
        self.share = share
        self.up_after_ms = up_after_ms
        self.probe_ms = probe_ms
        self._clock = clock
        self.mode: Mode = "auto"
        self.views: dict[str, SlotView] = {}
        self.closed = False
        self.state: SiteState | None = None
        self._applied: dict[str, int] = {}  # slot id -> layer applied (audio: TOP or PAUSED)
        self._states: dict[str, SlotState] = {}
        self._last_down_ms = -(10**9)
        self._stepped_down = False
        self._probe_start_ms: int | None = None
        self._probe_target = 0
        self._probe_sent_bytes = 0
        self._probe_start_bytes = 0
        self._probe_failures = 0
        self._probe_streak = 0  # probes carried in a row since the last failure or congestion
        self._held_bps, self._held_ms = 0, -(10**9)  # the most the link carried quietly, and when
        self._probe_success_ms: int | None = None
        self._last_up_ms = -(10**9)
        self._last_fail_ms = -(10**9)
        self._pace_ms = 0
        self._last_tick_ms: int | None = None
        self._last_parts = (0, 0, 0)  # _sent_parts() at the last measuring tick
        self._sending = 0
        self._last_report_ms = -(10**9)
        self._task: asyncio.Task[None] | None = None
        self.red = False
        #: Retransmissions to the site: at most RTX_SHARE of its budget (every slot takes from it).
        self.rtx_bucket = ByteBucket(DEFAULT_RTX_BPS / 8)
        for slot in slot_set.slots.values():
            slot.rtx_bucket = self.rtx_bucket
        self._red_low_since: int | None = None
        self._demanded: tuple[list[AudioDemand], list[VideoDemand]] = ([], [])

    # -- requests ---------------------------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        """The site's choice: ``auto``, ``low`` (stage at most TL1, thumbnails TL0) or ``audio``."""
        if mode not in MODES:
            raise ValueError(f"a site's choice is one of {', '.join(MODES)}, not {mode!r}")
        if mode != self.mode:
            self.mode = mode
            self.tick(self._clock(), requested=True)

    def set_views(self, views: Mapping[str, SlotView]) -> None:
        """What the page shows of its video slots (a slot not named keeps what it had)."""
        unknown = [slot_id for slot_id in views if slot_id not in self.slot_set.slots]
        if unknown:
            raise ValueError(f"unknown slot(s): {', '.join(sorted(unknown))}")
        changed = any(self.views.get(slot_id) != view for slot_id, view in views.items())
        self.views.update(views)
        if changed:
            self.tick(self._clock(), requested=True)

    # -- feedback (the transport routes the site's RTCP here) -------------------------------

    def on_remb(self, bitrate: int, source: int = 0) -> None:
        """A REMB, honoured only from a subscriber that negotiated ``goog-remb`` (a peer that did
        not, e.g. a test bot whose delay-based estimator runs in a starved event loop, is judged by
        its loss reports alone)."""
        if any(s.parameters is not None and s.parameters.remb for s in self.slot_set.slots.values()):
            self.estimator.on_remb(bitrate, self._clock(), source)

    def on_report(self, ssrc: int, fraction_lost: int, highest_sequence: int = -1) -> None:
        slot = self.slot_set.by_ssrc.get(ssrc)
        if slot is not None:
            self.estimator.on_report(ssrc, fraction_lost, self._clock(), highest_sequence,
                                     slot.stats.packets_sent if ssrc == slot.ssrc else -1)

    # -- the budget -------------------------------------------------------------------------

    def _demands(self, now_ms: int) -> tuple[list[AudioDemand], list[VideoDemand]]:
        audios: list[AudioDemand] = []
        videos: list[VideoDemand] = []
        for slot_id, slot in self.slot_set.slots.items():
            producer = slot.target
            if producer is None:
                continue
            rates = producer.layer_rates.sample(now_ms)
            # not yet measured, or silent: a typical stream's rates (the sample's layers are those seen so
            # far, one before the first TL1/TL2 packet; a silent stream's zero would cost nothing)
            measured = producer.layer_rates.measured and rates and rates[-1] > 0
            if slot.kind == "audio":
                rate = rates[0] if measured else DEFAULT_AUDIO_RATE
                if slot.red:
                    rate = int(rate * RED_RATE_FACTOR)
                audios.append(AudioDemand(slot_id, rate, stage=slot_id == STAGE_AUDIO))
            else:
                view = self.views.get(slot_id)
                videos.append(VideoDemand(slot_id, rates if measured else DEFAULT_VIDEO_RATES,
                                          stage=slot_id == STAGE_VIDEO, visible=view is None or view.visible))
        videos.sort(key=lambda d: not d.stage)  # the stage, then thumbnails in slot (last-N) order
        return audios, videos

    def _sent_parts(self) -> tuple[int, int, int]:
        """Bytes sent to the site so far: media, probe padding, retransmissions."""
        slots = self.slot_set.slots.values()
        return (sum(s.stats.bytes_sent for s in slots), sum(s.stats.padding_bytes_sent for s in slots),
                sum(s.stats.retransmitted_bytes for s in slots))

    def tick(self, now_ms: int, *, requested: bool = False) -> None:
        """Measure, allocate, apply (see the module docstring); ``requested``: the page asked."""
        if self.closed:
            return
        parts = self._sent_parts()
        sent = sum(parts)
        if self._last_tick_ms is not None and not requested and now_ms > self._last_tick_ms:
            elapsed = now_ms - self._last_tick_ms
            self._sending = int((sent - sum(self._last_parts)) * 8000 / elapsed)
            media = parts[0] + parts[2] - self._last_parts[0] - self._last_parts[2]
            self.estimator.on_sent(self._sending, now_ms, int(media * 8000 / elapsed))
            if logger.isEnabledFor(logging.DEBUG):
                rates = [int((p - q) * 8 / elapsed) for p, q in zip(parts, self._last_parts)]
                stats = [s.stats for s in self.slot_set.slots.values()]
                logger.debug("site budget of %s: sent %d kbit/s (media %d, padding %d, rtx %d); %s, feedback %d ms ago; NACKed %d, "
                             "resent %d, spaced %d, missed %d, over budget %d", self.slot_set.subscriber_id,
                             self._sending // 1000, *rates, self.estimator,
                             min(99999, now_ms - self.estimator.last_feedback_ms), sum(s.nacked_packets for s in stats),
                             sum(s.retransmitted for s in stats), sum(s.retransmits_spaced for s in stats),
                             sum(s.retransmit_misses for s in stats), sum(s.retransmits_over_budget for s in stats))
        if self._last_tick_ms is None:
            # the link is unknown yet: the first step up and the first probe wait as after a step down
            self._last_down_ms = self._last_fail_ms = now_ms
        if not requested or self._last_tick_ms is None:
            self._last_tick_ms, self._last_parts = now_ms, parts
        estimate = self.estimator.estimate(now_ms)
        if now_ms - self.estimator.last_congestion_ms >= HELD_QUIET_MS and (
                estimate >= self._held_bps or now_ms - self._held_ms > HELD_FOR_MS):
            self._held_bps, self._held_ms = estimate, now_ms
        # the retransmissions the site's loss asks for come out of its share too
        budget = int(estimate * self._spendable())
        audios, videos = self._demands(now_ms)
        if self._update_red(now_ms, budget, audios):
            audios, videos = self._demands(now_ms)
        wanted = allocate(budget, audios, videos, self.mode, self._applied)
        self._demanded = (audios, videos)
        self._apply(wanted, audios, videos, estimate, now_ms)
        self.rtx_bucket.set_rate(max(MIN_RTX_BPS, budget * RTX_SHARE) / 8)
        self._report(estimate, budget, now_ms)

    def _apply(self, wanted: Allocation, audios: list[AudioDemand], videos: list[VideoDemand], estimate: int,
               now_ms: int) -> None:
        targets = {slot_id: (2 if on else PAUSED) for slot_id, on in wanted.audio.items()}
        targets.update(wanted.layers)
        first = not self._applied
        calm_ms = now_ms - self.estimator.last_congestion_ms
        ups: dict[str, int] = {}
        for slot_id, layer in targets.items():
            current = self._applied.get(slot_id)
            if current is None or first or layer < current:
                if current is not None and not first and layer < current and wanted.states[slot_id] != "paused_request":
                    self._last_down_ms = now_ms  # a step down for bandwidth: the next step up waits
                    self._stepped_down = True
                self._set(slot_id, layer)
            elif layer > current:
                if self._states.get(slot_id) == "paused_request":
                    self._set(slot_id, layer)  # shown again / chosen again, within the budget: at once
                    self._last_up_ms = now_ms
                else:
                    ups[slot_id] = layer
        wait = self._wait_ms()
        # a step up waits for quiet; a probe also backs off after failed ones (a link that came back
        # takes its streams back without waiting out the probes that failed while it was down)
        up_wait = STARTUP_UP_AFTER_MS if self._startup() else self.up_after_ms
        quiet = min(now_ms - self._last_down_ms, calm_ms) >= up_wait
        states = dict(wanted.states)
        stepped_up = bool(ups) and quiet
        if stepped_up:
            for slot_id, layer in ups.items():
                self._set(slot_id, layer)
            ups = {}
            self._last_up_ms = now_ms
        for slot_id in ups:
            states[slot_id] = "paused_bandwidth" if self._applied.get(slot_id) == PAUSED else "active"
        self._states = states
        # a step up is measured before anything is probed (its keyframe alone may fill a slow link)
        # a probe waits for quiet since the last congestion or failed probe, and for the streams to settle
        # after any step (a step down for a stream's own rate is no news of the link)
        settled = now_ms - max(self._last_up_ms, self._last_down_ms) >= min(UP_SETTLE_MS, wait)
        probe_quiet = min(now_ms - self._last_fail_ms, calm_ms) >= wait and settled
        self._probe(wanted, audios, videos, estimate, now_ms, probe_quiet and not ups and not stepped_up)

    def _wait_ms(self) -> int:
        """How long the link must be quiet before a step up or a probe: short while the link is
        unknown, doubling with every probe that failed in a row after the first (at most MAX_WAIT_MS)."""
        if self._startup():
            return STARTUP_UP_AFTER_MS
        return min(MAX_WAIT_MS, self.up_after_ms * 2 ** min(max(0, self._probe_failures - 1), 4))

    def _probe(self, wanted: Allocation, audios: list[AudioDemand], videos: list[VideoDemand], estimate: int,
               now_ms: int, quiet: bool) -> None:
        """Find out whether the link carries more: when it has been quiet and more would be sent with
        a larger estimate, pad up to that estimate for ``probe_ms``; no congestion signal meanwhile
        and the estimator learns that the link carried it."""
        start = self._probe_start_ms
        if start is not None:
            failed = self.estimator.last_congestion_ms >= start
            if not failed and now_ms - start < self._probe_length() + PROBE_FEEDBACK_MS:
                return
            self._probe_start_ms = None
            self.estimator.on_probe_end(now_ms)
            logger.debug("site budget of %s: probe to %d kbit/s %s", self.slot_set.subscriber_id,
                         self._probe_target // 1000, "failed" if failed or not self._probe_sent_bytes else "carried")
            heard = self.estimator.last_feedback_ms >= start + self._probe_length()
            if not failed and self._probe_sent_bytes > 0 and heard:
                self.estimator.on_probe(self._probe_target, now_ms)
                self._probe_success_ms = now_ms
                self._probe_streak += 1
            else:
                self._probe_failed(now_ms)
                self._probe_success_ms = None  # this failure is the verdict on the last success too
            return
        success = self._probe_success_ms
        if success is not None and self.estimator.last_congestion_ms > success:
            self._probe_success_ms = None
            self._probe_streak = 0
            if self.estimator.last_congestion_ms - success <= PROBE_BLAME_MS:
                self._probe_failed(now_ms)  # what the probe let in congested the link: it did not carry it
        elif success is not None and now_ms - success > PROBE_BLAME_MS:
            self._probe_success_ms = None
            self._probe_failures = 0
        if not quiet or self._padding_slot() is None:
            return
        if not wanted.next_budget:
            return  # nothing more to send: no need to know
        # the link is tried at what the next step up needs (and, while it is unknown, at what all of it
        # needs), at most PROBE_STEP (STARTUP_PROBE_STEP) times the estimate: a small overshoot at most
        held = self._held_bps if now_ms - self._held_ms <= HELD_FOR_MS else 0
        if self._startup():
            larger = int(estimate * STARTUP_PROBE_STEP)
            needed = allocate(int(larger * self._spendable()), audios, videos, self.mode, self._applied).total
        elif self._probe_streak and held > estimate * PROBE_STEP:
            # a link that carried the last probe and carried more lately (it came back): double, up
            # to what it carried, whatever the next step needs
            larger = needed = min(int(estimate * STARTUP_PROBE_STEP), held)
        else:
            larger = int(estimate * PROBE_STEP)
            needed = int(wanted.next_budget * PROBE_MARGIN)
        least = estimate * (MIN_PROBE_STEP if not self._probe_failures else 1) + MIN_PROBE_BPS
        self._probe_target = min(larger, max(int(needed / self._spendable()), int(least)))
        self._probe_sent_bytes = 0
        self._probe_start_bytes = sum(self._sent_parts())
        self._probe_start_ms = self._pace_ms = now_ms
        self.estimator.on_probe_start(estimate, now_ms)

    def _spendable(self) -> float:
        """The share of the estimate the slots may spend: ``share``, less room for the retransmissions."""
        return self.share * (1 - min(MAX_LOSS_RESERVE, LOSS_RESERVE * self.estimator.loss))

    def _probe_length(self) -> int:
        """How long a probe pads."""
        return STARTUP_PROBE_MS if self._startup() else self.probe_ms

    def _probe_failed(self, now_ms: int) -> None:
        self._last_down_ms = self._last_fail_ms = now_ms  # the link did not carry it: wait (longer) again
        self._probe_failures += 1
        self._probe_streak = 0

    def _update_red(self, now_ms: int, budget: int, audios: list[AudioDemand]) -> bool:
        """RED on the audio slots while the site loses >= 3 % (a lost packet comes back in the next
        one, without waiting a round trip) and the budget carries the audio twice over; off after
        10 s under 1 %, or at once when it no longer fits (a 64 kbit/s site: Opus in-band FEC only).
        True when it changed."""
        was = self.red
        loss = self.estimator.loss
        audio = sum(a.rate for a in audios)
        fits = budget >= (audio if self.red else audio * RED_RATE_FACTOR)
        if not fits:
            self.red, self._red_low_since = False, None
        elif loss >= RED_ON_LOSS:
            self.red, self._red_low_since = True, None
        elif loss < RED_OFF_LOSS and self.red:
            if self._red_low_since is None:
                self._red_low_since = now_ms
            elif now_ms - self._red_low_since >= RED_OFF_MS:
                self.red, self._red_low_since = False, None
        for slot in self.slot_set.slots.values():
            if slot.kind == "audio" and slot.red != self.red:
                slot.set_red(self.red)
        return self.red != was

    def _startup(self) -> bool:
        """No congestion signal and no step down for bandwidth yet: the link is unknown and, as far as
        anything says, good; the budget probes sooner and in larger steps (a site on a LAN reaches
        its full video in seconds, not in a minute of 1.5x steps)."""
        return self.estimator.last_congestion_ms < 0 and not self._stepped_down

    def _set(self, slot_id: str, layer: int) -> None:
        self._applied[slot_id] = layer
        self.slot_set.slots[slot_id].set_layer(layer)

    def _padding_slot(self) -> Slot | None:
        fallback = None
        for slot in self.slot_set.slots.values():
            if slot.kind == "video" and slot.can_pad:
                if slot.forwarding:
                    return slot
                fallback = fallback or slot
        return fallback

    @property
    def probing(self) -> bool:
        return self._probe_start_ms is not None

    def pace(self, now_ms: int) -> None:
        """Send the probe's padding for the time since the last call (every :data:`PACE_MS`): what
        the site has been sent since the probe started (media, retransmissions, padding) is made up
        to the probe's rate, so a keyframe or a step up meanwhile takes the padding's place
        rather than adding to it; nothing more once a congestion signal came."""
        elapsed = now_ms - self._pace_ms
        self._pace_ms = now_ms
        start = self._probe_start_ms
        if start is None or self.closed or self.estimator.last_congestion_ms >= start \
                or now_ms - start >= self._probe_length():
            return  # not probing, a congestion signal came, or the padding is over (awaiting feedback)
        slot = self._padding_slot()
        if slot is None:
            return
        due = self._probe_target * (now_ms - start) / 8000 - (sum(self._sent_parts()) - self._probe_start_bytes)
        burst = self._probe_target * min(elapsed, 100) / 8000
        if due > 0:
            self._probe_sent_bytes += slot.send_padding(int(min(due, burst)))

    def _report(self, estimate: int, budget: int, now_ms: int) -> None:
        slots: dict[str, tuple[SlotState, int]] = {}
        for slot_id, slot in self.slot_set.slots.items():
            if slot.target is None:
                slots[slot_id] = ("empty", PAUSED)
            else:
                state = self._states.get(slot_id, "active")
                slots[slot_id] = (state, slot.layer if state == "active" else PAUSED)
        rtt = min((s.stats.round_trip_time_ms for s in self.slot_set.slots.values()
                   if s.stats.round_trip_time_ms is not None), default=None)
        state = SiteState(estimate=estimate, budget=budget, sending=self._sending, loss=self.estimator.loss,
                          mode=self.mode, probing=self.probing, red=self.red, slots=slots,
                          rtt_ms=None if rtt is None else round(rtt))
        previous = self.state
        self.state = state
        changed = previous is None or previous.slots != slots or previous.mode != state.mode
        if changed:
            stats = [s.stats for s in self.slot_set.slots.values()]
            audios, videos = self._demanded
            demands = " ".join([f"{a.slot_id}:{a.rate // 1000}" for a in audios]
                               + [f"{v.slot_id}:{'/'.join(str(r // 1000) for r in v.rates)}" for v in videos])
            logger.info("site budget of %s: estimate %d kbit/s, sending %d kbit/s, loss %.1f %% (NACKed %d of %d "
                        "sent): %s (kbit/s asked: %s)", self.slot_set.subscriber_id, estimate // 1000,
                        self._sending // 1000, state.loss * 100, sum(s.nacked_packets for s in stats),
                        sum(s.packets_sent for s in stats),
                        " ".join(f"{k}={v[0]}/{v[1]}" for k, v in slots.items() if v[0] != "empty"), demands)
        if changed or now_ms - self._last_report_ms >= REPORT_MS:
            self._last_report_ms = now_ms
            self.emit("state", state)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None and not self.closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        next_tick = self._clock()
        try:
            while not self.closed:
                await asyncio.sleep(PACE_MS / 1000)
                now = self._clock()
                self.pace(now)
                if now >= next_tick:
                    next_tick = now + TICK_MS
                    try:
                        self.tick(now)
                    except Exception:  # noqa: BLE001 - a budget bug must not stop the site's media
                        logger.exception("site budget of %s failed a tick", self.slot_set.subscriber_id)
        except asyncio.CancelledError:
            pass

    def close(self) -> None:
        """Stop managing the slots: they go back to every layer, unpaused, without an allowance."""
        if self.closed:
            return
        self.closed = True
        for slot in self.slot_set.slots.values():
            slot.rtx_bucket = None
            if not slot.closed:
                slot.set_layer(TOP_LAYER)
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.emit("close")
        self.remove_all_listeners()
