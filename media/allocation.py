"""A site's bandwidth budget shared among its slots: audio first, then video by priority. Pure.

The budget (a share of the site's estimate) is spent in this order, each step taken only when it
fits in what is left, and the walk stops at the first step that does not fit:

1. the stage audio (the voice everyone must hear) - always, whatever the budget;
2. the extra voices, in their slots' order;
3. the stage video at its base layer (TL0), then TL1, then every layer;
4. the thumbnails at TL0 in last-N order, then all of them at TL1, then at every layer.

A layer already forwarded (``current``) costs :data:`KEEP_FACTOR` of its rate to keep: starting
one needs that much headroom, keeping one does not, so a stream whose measured rate wobbles (the
keyframe its own resume asked for) is not paused and resumed in turn.

Read backwards this is the ladder down: thumbnails to TL0, thumbnails off, stage TL1, stage TL0,
video off, and below that one voice only. A stream the page does not show, or that the site's
choice (``low``: stage at most TL1, thumbnails TL0; ``audio``: no video) rules out, is *paused on
request* and costs nothing; a stream left out for want of budget is *paused for bandwidth*. One
precedence rule for what a slot shows: empty > paused on request > paused for bandwidth > active.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .slot_layers import PAUSED

SlotState = Literal["active", "paused_bandwidth", "paused_request", "empty"]
Mode = Literal["auto", "low", "audio"]
MODES: tuple[Mode, ...] = ("auto", "low", "audio")
#: Cumulative bit/s of a VP8 L1T3 stream's layers before any was measured (TL0, TL0+1, all).
DEFAULT_VIDEO_RATES = (200_000, 320_000, 500_000)
DEFAULT_AUDIO_RATE = 45_000
#: What keeping a layer already forwarded costs, as a share of its rate (the budget's own headroom).
KEEP_FACTOR = 0.85


@dataclass(frozen=True)
class AudioDemand:
    slot_id: str
    #: bit/s on the wire (IP/UDP/SRTP overhead included).
    rate: int
    stage: bool = False


@dataclass(frozen=True)
class VideoDemand:
    slot_id: str
    #: Cumulative bit/s on the wire per temporal layer (one entry for a stream without layers).
    rates: tuple[int, ...]
    stage: bool = False
    #: The page shows this slot's tile (a hidden or minimised tile is paused on request).
    visible: bool = True


@dataclass
class Allocation:
    """Per slot: the layer (video; PAUSED: none), on/off (audio) and the state the page shows."""

    layers: dict[str, int] = field(default_factory=dict)
    audio: dict[str, bool] = field(default_factory=dict)
    states: dict[str, SlotState] = field(default_factory=dict)
    total: int = 0
    #: The smallest budget that would take one more step (0: nothing more to take).
    next_budget: int = 0


def _cap(mode: Mode, demand: VideoDemand) -> int:
    """The highest layer the site's choice and the page allow for a video slot (PAUSED: none)."""
    top = len(demand.rates) - 1
    if mode == "audio" or not demand.visible:
        return PAUSED
    if mode == "low":
        return min(top, 1 if demand.stage else 0)
    return top


def allocate(budget: int, audios: Sequence[AudioDemand], videos: Sequence[VideoDemand],
             mode: Mode = "auto", current: Mapping[str, int] | None = None) -> Allocation:
    """Spend ``budget`` bit/s (see the module docstring). ``videos`` in priority order (the stage
    first, then last-N order); ``audios`` the stage voice first; ``current``: the layer each video
    slot forwards now (absent or PAUSED: none)."""
    if mode not in MODES:
        raise ValueError(f"a site's choice is one of {', '.join(MODES)}, not {mode!r}")
    out = Allocation()
    left = budget
    stopped = False
    for demand in sorted(audios, key=lambda a: not a.stage):
        on = demand.stage or (not stopped and demand.rate <= left)
        if not on and not stopped:
            out.next_budget = budget - left + demand.rate
        stopped = stopped or not on
        out.audio[demand.slot_id] = on
        out.states[demand.slot_id] = "active" if on else "paused_bandwidth"
        if on:
            left -= demand.rate
            out.total += demand.rate
    forwarded = current or {}
    caps = {d.slot_id: _cap(mode, d) for d in videos}
    for demand in videos:
        out.layers[demand.slot_id] = PAUSED
    stage = [d for d in videos if d.stage]
    thumbs = [d for d in videos if not d.stage]

    def step(demand: VideoDemand, layer: int) -> bool:
        """Raise ``demand`` to ``layer`` if it fits; False when the walk must stop."""
        nonlocal left
        if layer > caps[demand.slot_id]:
            return True  # not wanted: skip, the walk goes on
        current = out.layers[demand.slot_id]
        cost = demand.rates[layer] - (demand.rates[current] if current >= 0 else 0)
        if layer <= forwarded.get(demand.slot_id, PAUSED):
            cost = int(cost * KEEP_FACTOR)
        if cost > left:
            out.next_budget = budget - left + cost
            return False
        left -= cost
        out.layers[demand.slot_id] = layer
        return True

    walk: list[tuple[VideoDemand, int]] = [(d, layer) for d in stage for layer in range(len(d.rates))]
    walk += [(d, 0) for d in thumbs]
    for layer in (1, 2):
        walk += [(d, layer) for d in thumbs if layer < len(d.rates)]
    if not stopped:
        for demand, layer in walk:
            if not step(demand, layer):
                break
    for demand in videos:
        layer = out.layers[demand.slot_id]
        if caps[demand.slot_id] == PAUSED:
            out.states[demand.slot_id] = "paused_request"
        elif layer == PAUSED:
            out.states[demand.slot_id] = "paused_bandwidth"
        else:
            out.states[demand.slot_id] = "active"
            out.total += demand.rates[layer]
    return out
