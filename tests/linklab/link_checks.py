"""The poor-links matrix's thresholds: which numbers each profile must reach, and PASS/FAIL per cell.

The brief's targets: at ``poor`` audio played >= 99 %, no concealment event > 200 ms, stage >= 7 fps,
freeze time <= 2 % and no freeze > 1 s, the server's sending rate <= 0.9 x the link (5 s mean); at
64 kbit/s (``floor64``) audio played >= 99 %; after the ``fall`` a step down within 5 s and back up
within 15 s. Links no worse than ``poor`` (clean, province, bursty: poor's rate and loss in bursts) are
held to poor's targets; ``edge`` (512 kbit/s) to the audio targets and the sending rate only (video
may degrade there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from link_metrics import Metrics


@dataclass(frozen=True)
class Threshold:
    """One target: a metric, its bound, and how to print both."""

    column: str
    attribute: str
    bound: float
    at_least: bool
    show: Callable[[float], str]

    def text(self) -> str:
        return f"{'>=' if self.at_least else '<='}{self.show(self.bound)}"


@dataclass(frozen=True)
class Check:
    """A cell: the value (printed), the threshold (printed) and whether it passed (None: no threshold)."""

    column: str
    value: str
    threshold: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "FAIL")


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _ms(v: float) -> str:
    return f"{v:.0f}ms"


def _fps(v: float) -> str:
    return f"{v:.1f}"


def _p(v: float) -> str:
    return f"{v:.1f}%"


def _x(v: float) -> str:
    return f"{v:.2f}x"


def _s(v: float) -> str:
    return f"{v:.1f}s"


AUDIO = Threshold("audio played", "audio_played", 0.99, True, _pct)
CONCEAL = Threshold("longest conceal", "longest_concealment_ms", 200, False, _ms)
FPS = Threshold("stage fps", "stage_fps", 7, True, _fps)
FREEZE = Threshold("freeze time", "freeze_percent", 2.0, False, _p)
LONGEST_FREEZE = Threshold("longest freeze", "longest_freeze_ms", 1000, False, _ms)
SEND = Threshold("send/link 5s", "send_fraction_max5s", 0.9, False, _x)
FALL_DOWN = Threshold("fall: down", "fall_down_s", 5, False, _s)  # fall_layer_down_s where layers are shown
FALL_UP = Threshold("fall: up", "fall_up_s", 15, False, _s)

COLUMNS = (AUDIO, CONCEAL, FPS, FREEZE, LONGEST_FREEZE, SEND, FALL_DOWN, FALL_UP)
POOR = (AUDIO, CONCEAL, FPS, FREEZE, LONGEST_FREEZE, SEND)
TARGETS: dict[str, tuple[Threshold, ...]] = {
    "clean": POOR[:-1], "province": POOR, "poor": POOR, "bursty": POOR,
    "edge": (AUDIO, CONCEAL, SEND),
    "floor64": (AUDIO,),
    "fall": (FALL_DOWN, FALL_UP),
}


def checks(name: str, metrics: Metrics) -> list[Check]:
    """One cell per column for the matrix row ``name`` (a profile name or "fall"). The fall's step down
    and back up are judged on the layers the server reports where the page shows them, else on the
    server's sending rate."""
    targets = TARGETS.get(name, ())
    out = []
    for column in COLUMNS:
        value = getattr(metrics, column.attribute)
        if column in (FALL_DOWN, FALL_UP) and metrics.layers is not None:
            value = getattr(metrics, column.attribute.replace("fall_", "fall_layer_"))
        held = column in targets
        if value is None:
            never = column in (FALL_DOWN, FALL_UP) and name == "fall"
            out.append(Check(column.column, "never" if never else "n/a", column.text() if held else "",
                             False if held else None))
            continue
        passed = (value >= column.bound) if column.at_least else (value <= column.bound)
        out.append(Check(column.column, column.show(value), column.text() if held else "", passed if held else None))
    return out


def failures(name: str, metrics: Metrics) -> list[Check]:
    return [c for c in checks(name, metrics) if c.passed is False]
