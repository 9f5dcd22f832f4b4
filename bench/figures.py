"""Figures from the load generators' raw results: percentiles of the delay histograms and the frame
matching that measures delay across a re-encoding server."""

from __future__ import annotations

def percentile_from_hist(hist: dict[int, int], bin_ns: int, q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    target = q * total
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= target:
            return (index + 0.5) * bin_ns / 1e6
    return None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def match_frames(received: list[tuple[int, int]], sent: list[tuple[int, int]], run: int = 8) -> list[float]:
    """Delays (ms) of received video frames (RTP timestamp, arrival ns) against sent frames (RTP
    timestamp, send ns) when the server re-encoded them: its output timestamps carry an unknown
    offset (and aiortc's decode/encode drifts them by a tick or two per frame). The sent frame
    steps have a signature (bench.loadgen.rtp.video_ts_jitter): a run of ``run`` received steps that occurs
    exactly once among the sent steps anchors the match, which then walks forward re-anchoring on
    every matched frame."""
    if len(sent) <= run or len(received) <= run:
        return []

    def symbol(step: int) -> int | None:
        step = _signed(step)
        return round((step - 6000) / 300) if 4000 < step < 8000 else None

    sent_symbols = [symbol(sent[i + 1][0] - sent[i][0]) for i in range(len(sent) - 1)]
    positions: dict[tuple[int | None, ...], list[int]] = {}
    for i in range(len(sent_symbols) - run + 1):
        positions.setdefault(tuple(sent_symbols[i : i + run]), []).append(i)
    anchor = None
    for j in range(len(received) - run):
        pattern = tuple(symbol(received[j + m + 1][0] - received[j + m][0]) for m in range(run))
        if None in pattern:
            continue
        found = positions.get(pattern, [])
        if len(found) == 1:
            anchor = (j, found[0])
            break
    if anchor is None:
        return []
    j, i = anchor
    offset = received[j][0] - sent[i][0]
    delays = []
    for ts, arrival in received[j:]:
        target = ts - offset
        while i < len(sent) and _signed(target - sent[i][0]) > 1500:
            i += 1
        if i >= len(sent):
            break
        if abs(_signed(target - sent[i][0])) <= 1500:
            delays.append((arrival - sent[i][1]) / 1e6)
            offset = ts - sent[i][0]
    return delays
