"""What crosses a pipe whose link is capped: each piped camera's temporal layers, within a working limit
that the far side's loss reports move below the link's cap (DESIGN.md "Pipes and nodes"). Pure.

The cap is the link's configured rate in the sending direction (a node's ``downlink_kbps`` for the
centre's end, told over the control channel; its ``uplink_kbps`` for its own end); 0: none.

:class:`LinkLimit`, the working limit. The far side reports each stream's loss every
``REPORT_INTERVAL_MS`` (:mod:`media.pipe`); the sender weighs them by the packets each stream sent:

- above :data:`HIGH_LOSS_PERCENT` in :data:`HIGH_LOSS_REPORTS` reports running: the limit becomes
  :data:`BACK_OFF` x what crossed since the report before (never below what must cross: audio and
  every camera's TL0), and the count starts again;
- below :data:`LOW_LOSS_PERCENT`: it rises by :data:`RAISE` of itself (at least :data:`RAISE_MIN_BPS`)
  per report, up to the cap, never above it; without a cap, once it reaches what every layer of every
  wanted stream takes, there is no limit again;
- in between: it holds.

:func:`choose_layers`, the layers within the limit, spent in this order: audio (never thinned), TL0
of every camera, then the upper layers, the floor holder's / most recent speaker's camera first
(:func:`media.allocation.allocate` walks them: its stage is the first camera, its thumbnails the
others, TL1 for all of them before TL2, with its headroom for layers forwarded already). A camera is
never paused in the pipe: when even audio and every TL0 do not fit, every camera crosses at TL0 and
``over_limit`` says so (the node's own subscribers pause what their sites cannot take).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .allocation import VideoDemand, allocate
from .layer_thinning import TOP_LAYER

HIGH_LOSS_PERCENT = 10.0
HIGH_LOSS_REPORTS = 2
LOW_LOSS_PERCENT = 2.0
BACK_OFF = 0.85
RAISE = 0.08
RAISE_MIN_BPS = 16_000
#: A report closer than this to the one before is not another one (the far side splits a report of
#: more than 31 streams into several RTCP packets).
MIN_REPORT_GAP_MS = 500
#: A link's cap in kbit/s: 0 (none) or within these bounds.
MIN_CAP_KBPS = 64
MAX_CAP_KBPS = 10_000_000


def valid_cap(kbps: object) -> bool:
    """``kbps`` is a link cap: an integer, 0 (none) or :data:`MIN_CAP_KBPS`..:data:`MAX_CAP_KBPS`."""
    return (isinstance(kbps, int) and not isinstance(kbps, bool)
            and (kbps == 0 or MIN_CAP_KBPS <= kbps <= MAX_CAP_KBPS))


@dataclass
class LayerChoice:
    """The target layer per camera (producer id), and what the choice costs (bit/s on the wire)."""

    layers: dict[str, int] = field(default_factory=dict)
    total_bps: int = 0
    #: Audio and every camera's TL0: what crosses whatever the limit.
    floor_bps: int = 0
    #: Audio and every layer of every camera.
    full_bps: int = 0
    #: The limit cannot carry even ``floor_bps``: everything crosses at TL0 anyway.
    over_limit: bool = False


def choose_layers(limit_bps: int | None, audio_bps: int, cameras: Sequence[tuple[str, tuple[int, ...]]],
                  current: Mapping[str, int] | None = None) -> LayerChoice:
    """The layers of ``cameras`` (producer id, cumulative bit/s per layer; the floor holder's first, then
    the most recent speakers') within ``limit_bps`` (None: no limit) after ``audio_bps`` (see the module
    docstring). ``current``: the layer each camera is sent at now. A camera with one layer is left at
    :data:`TOP_LAYER` (nothing to thin)."""
    choice = LayerChoice()
    choice.floor_bps = audio_bps + sum(rates[0] for _, rates in cameras)
    choice.full_bps = audio_bps + sum(rates[-1] for _, rates in cameras)
    if limit_bps is None:
        choice.layers = {pid: TOP_LAYER for pid, _ in cameras}
        choice.total_bps = choice.full_bps
        return choice
    left = limit_bps - choice.floor_bps
    choice.over_limit = left < 0
    demands = [VideoDemand(pid, tuple(rate - rates[0] for rate in rates), stage=i == 0)
               for i, (pid, rates) in enumerate(cameras)]
    chosen = allocate(max(0, left), [], demands, "auto", current).layers
    for pid, rates in cameras:
        layer = max(0, chosen.get(pid, 0))
        choice.layers[pid] = TOP_LAYER if len(rates) == 1 else layer
        choice.total_bps += rates[min(layer, len(rates) - 1)]
    choice.total_bps += audio_bps
    return choice


class LinkLimit:
    """The working limit of one sending end (see the module docstring)."""

    def __init__(self, cap_kbps: int = 0) -> None:
        self.cap_bps = 0
        #: bit/s; None: no limit.
        self.limit_bps: int | None = None
        #: From the last choice: what must cross, and what everything wanted would take.
        self.floor_bps = 0
        self.full_bps = 0
        self._high = 0
        self._last_report_ms: int | None = None
        self.set_cap(cap_kbps)

    @property
    def cap_kbps(self) -> int:
        return self.cap_bps // 1000

    def set_cap(self, kbps: int) -> None:
        """The link's configured cap (0: none); the working limit starts again from it."""
        if not valid_cap(kbps):
            raise ValueError(f"a link's cap is 0 (none) or {MIN_CAP_KBPS}..{MAX_CAP_KBPS} kbit/s, not {kbps!r}")
        self.cap_bps = kbps * 1000
        self.limit_bps = self.cap_bps or None
        self._high = 0

    def on_report(self, loss: int, crossed_bps: float, now_ms: int) -> bool:
        """The far side's loss (0..255, RTCP's fraction) in a report, and the bit/s that crossed since the
        report before; True when it counted (not within :data:`MIN_REPORT_GAP_MS` of the last)."""
        if self._last_report_ms is not None and now_ms - self._last_report_ms < MIN_REPORT_GAP_MS:
            return False
        self._last_report_ms = now_ms
        percent = loss * 100 / 256
        if percent > HIGH_LOSS_PERCENT:
            self._high += 1
            if self._high >= HIGH_LOSS_REPORTS:
                self._high = 0
                lowered = max(self.floor_bps, int(BACK_OFF * crossed_bps))
                self.limit_bps = lowered if self.limit_bps is None else min(self.limit_bps, lowered)
            return True
        self._high = 0
        if percent < LOW_LOSS_PERCENT and self.limit_bps is not None and self.limit_bps != self.cap_bps:
            raised = self.limit_bps + max(RAISE_MIN_BPS, int(self.limit_bps * RAISE))
            if self.cap_bps:
                self.limit_bps = min(self.cap_bps, raised)
            else:
                self.limit_bps = None if raised >= self.full_bps else raised
        return True
