"""The poor-links matrix's numbers: what a governor's page heard and saw, and what the server sent the site.

From a ``RunRecord`` (link_run.py: samples of the page's receiving getStats and of the relay's counters
every ~250 ms), over the measured part of the run (after the warm-up):

- audio played: 1 - d(concealedSamples - silentConcealedSamples) / d(totalSamplesReceived) of the stage's
  inbound audio (the chair's voice). Samples are counted only while an element plays the track: the page
  plays every audio slot through an <audio> element (checked: ``audio_elements_playing``).
- longest concealment event: from the sampled series. An interval is "concealed" when at least 90 % of
  the samples played in it were concealed-but-not-silent; a run of such intervals, plus the concealed
  samples of the intervals on either side (the event began and ended inside them), is one event.
  Resolution: the sampling interval. Without any fully concealed interval the value is the largest
  concealed time within one interval (an upper bound: it may be several short events).
- stage video: decoded frames per second of the stage slot; freeze time % (Chromium's freeze counters,
  plus a stall still running at the end, which Chromium counts only when it ends); longest freeze
  (a freeze ended within an interval, or the longest stretch with no decoded frame, whichever is longer).
- the server's sending rate to the site: the relay's downlink input (before its loss and queue), as
  5 s means; the largest as a fraction of the link rate then in force. The uplink likewise (mean).
- the layer the server reports per slot (the page's ``slotStates`` from the ``slot_state`` event), as
  shares of the samples for the stage, and the server's estimate of the link (None: the page shows none).
- after a fall: seconds from the fall until the 1 s mean of the sending rate is below the new link rate,
  and from the recovery until it is back at 80 % of its median before the fall; only while the page
  stays connected (a page reconnecting stops the sending by itself: that is no adaptation). Where the
  page shows layers, also the seconds until the video it is told it gets (layers of active video slots)
  is below its level of the 5 s before the fall, and after the recovery back at that level.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from link_run import RunRecord, Sample

FULL_CONCEALMENT = 0.9
RATE_WINDOW_S = 5.0
FALL_WINDOW_S = 1.0
BACK_UP_FRACTION = 0.8


@dataclass
class Metrics:
    """One run's (or the median of several runs') numbers; None: not measurable in this run."""

    profile: str
    seconds: float
    interval_ms: float
    audio_played: float | None = None
    longest_concealment_ms: float | None = None
    stage_fps: float | None = None
    freeze_percent: float | None = None
    longest_freeze_ms: float | None = None
    send_kbit_max5s: float | None = None
    send_kbit_mean: float | None = None
    send_fraction_max5s: float | None = None
    delivered_kbit_mean: float | None = None
    downlink_loss_percent: float | None = None
    downlink_queue_drop_percent: float | None = None
    uplink_kbit_mean: float | None = None
    uplink_fraction: float | None = None
    layers: str | None = None
    audio_elements_playing: bool | None = None
    #: Share of the samples whose stage video showed the chair (the page's slot map; samples naming
    #: nobody, e.g. between connections, left out).
    stage_held: float | None = None
    #: Times the page reconnected during the measurement (its signaling or media connection was lost).
    reconnects: int | None = None
    #: Seconds the page was not joined with a receiving connection (reconnecting).
    disconnected_s: float | None = None
    fall_down_s: float | None = None
    fall_up_s: float | None = None
    #: The same from the layers the server reports (None: the page shows none, or no step seen).
    fall_layer_down_s: float | None = None
    fall_layer_up_s: float | None = None
    #: The server's estimate of the site's link (median of what the page was told), kbit/s.
    estimate_kbps: float | None = None
    setup_s: float = 0.0
    run_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stream(sample: Sample, slot_id: str) -> dict[str, Any] | None:
    if sample.page is None:
        return None
    return next((s for s in sample.page["inbound"] if s["slotId"] == slot_id), None)


def _intervals(samples: list[Sample], slot_id: str,
               keys: tuple[str, ...]) -> list[tuple[float, float, dict[str, float] | None]]:
    """(start, end, deltas of ``keys``) for each pair of consecutive samples; deltas None where the slot's
    stream is missing from either (no receiving connection: the page is reconnecting; or nothing received
    yet) or a counter went backwards (a new connection began within the interval)."""
    out: list[tuple[float, float, dict[str, float] | None]] = []
    for before, after in zip(samples, samples[1:]):
        a, b = _stream(before, slot_id), _stream(after, slot_id)
        deltas = None if a is None or b is None else {k: float(b[k]) - float(a[k]) for k in keys}
        out.append((before.t, after.t, deltas if deltas is not None and min(deltas.values()) >= 0 else None))
    return out


def _audio(samples: list[Sample], metrics: Metrics) -> None:
    parts = _intervals(samples, "stage-audio", ("totalSamplesReceived", "concealedSamples", "silentConcealedSamples"))
    valid = [(end - start, d) for start, end, d in parts if d is not None]
    seconds = sum(span for span, _ in valid)
    if seconds <= 0 or sum(d["totalSamplesReceived"] for _, d in valid) <= 0:
        return
    rate = sum(d["totalSamplesReceived"] for _, d in valid) / seconds  # samples per second as counted (48 kHz)
    # An interval without the stream counts as played and wholly concealed: the listener heard nothing.
    played = [rate * (end - start) if d is None else d["totalSamplesReceived"] for start, end, d in parts]
    concealed = [rate * (end - start) if d is None else max(0.0, d["concealedSamples"] - d["silentConcealedSamples"])
                 for start, end, d in parts]
    metrics.audio_played = 1 - sum(concealed) / sum(played)
    full = [c >= FULL_CONCEALMENT * n > 0 for c, n in zip(concealed, played)]
    longest = max(concealed, default=0.0)
    i = 0
    while i < len(full):
        if not full[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(full) and full[j + 1]:
            j += 1
        # The event began within the interval before the run and ended within the one after it.
        event = sum(concealed[max(0, i - 1):j + 2])
        longest = max(longest, event)
        i = j + 1
    metrics.longest_concealment_ms = 1000 * longest / rate


def _video(samples: list[Sample], metrics: Metrics, duration: float) -> None:
    parts = _intervals(samples, "stage-video", ("framesDecoded", "freezeCount", "totalFreezesDuration"))
    valid = [d for _, _, d in parts if d is not None]
    metrics.stage_fps = sum(d["framesDecoded"] for d in valid) / duration
    freeze = sum(d["totalFreezesDuration"] for d in valid)
    longest = max((d["totalFreezesDuration"] for d in valid if d["freezeCount"] > 0), default=0.0)
    # Chromium counts a freeze only once a frame ends it: add the time without the stream at all
    # (reconnecting, no video yet), a stall still running at the end, and the longest stretch without
    # a decoded frame.
    last_frame_at = samples[0].t
    missing = since_frame = stall = 0.0
    for start, end, d in parts:
        if d is None:
            missing += end - start
        elif d["framesDecoded"] > 0:
            last_frame_at, since_frame = end, 0.0
        else:
            since_frame += end - start
        stall = max(stall, end - last_frame_at)
    freeze += missing + (since_frame if since_frame > 0.5 else 0.0)
    metrics.freeze_percent = min(100.0, 100 * freeze / duration)
    metrics.longest_freeze_ms = 1000 * max(longest, stall)


def rate_series(samples: list[Sample], direction: str, key: str, window: float) -> list[tuple[float, float]]:
    """(time, kbit/s over the ``window`` seconds before it) for every sample at least ``window`` in."""
    out = []
    j = 0
    for i, sample in enumerate(samples):
        while j < i and sample.t - samples[j + 1].t >= window:
            j += 1
        span = sample.t - samples[j].t
        if i > j and span >= window * 0.95:
            out.append((sample.t, (sample.relay[direction][key] - samples[j].relay[direction][key]) * 8 / span / 1000))
    return out


def _rate_at(record: RunRecord) -> Callable[[float], float | None]:
    def rate(t: float) -> float | None:
        current = record.profile.downlink.rate_kbit
        for at, kbit in record.rate_changes:
            if at <= t:
                current = kbit
        return current
    return rate


def _relay(record: RunRecord, samples: list[Sample], metrics: Metrics, duration: float) -> None:
    first, last = samples[0].relay, samples[-1].relay
    down = {k: last["downlink"][k] - first["downlink"][k] for k in last["downlink"]}
    up = {k: last["uplink"][k] - first["uplink"][k] for k in last["uplink"]}
    metrics.send_kbit_mean = down["in_bytes"] * 8 / duration / 1000
    metrics.delivered_kbit_mean = down["delivered_bytes"] * 8 / duration / 1000
    metrics.downlink_loss_percent = 100 * down["dropped_loss"] / max(1, down["in_packets"])
    metrics.downlink_queue_drop_percent = 100 * down["dropped_queue"] / max(1, down["in_packets"])
    metrics.uplink_kbit_mean = up["in_bytes"] * 8 / duration / 1000
    if record.profile.uplink.rate_kbit:
        metrics.uplink_fraction = metrics.uplink_kbit_mean / record.profile.uplink.rate_kbit
    windows = rate_series(samples, "downlink", "in_bytes", RATE_WINDOW_S)
    if windows:
        metrics.send_kbit_max5s = max(kbit for _, kbit in windows)
        rate_at = _rate_at(record)
        # Against the link rate in force over the whole window (windows across a change are left out).
        fractions = [kbit / rate_at(t) for t, kbit in windows
                     if rate_at(t) and rate_at(t - RATE_WINDOW_S) == rate_at(t)]
        if fractions:
            metrics.send_fraction_max5s = max(fractions)


def _connected(sample: Sample, first: Sample) -> bool:
    """The page has its receiving connection, joined, and has not reconnected since ``first``."""
    page, start = sample.page, first.page or {}
    return page is not None and page.get("phase") == "joined" and page.get("reconnects") == start.get("reconnects")


def _fall(record: RunRecord, samples: list[Sample], metrics: Metrics) -> None:
    if record.fall_at is None or record.plan.fall is None:
        return
    # A page that lost its connection stops the server's sending by itself: only what the server did
    # before the page's first disconnection after the fall counts.
    cutoff = next((s.t for s in samples if s.t >= record.fall_at and not _connected(s, samples[0])), samples[-1].t)
    _layer_fall(record, samples, metrics, cutoff)
    series = [(t, kbit) for t, kbit in rate_series(samples, "downlink", "in_bytes", FALL_WINDOW_S) if t < cutoff]
    new_rate = record.plan.fall.rate_kbit
    down_at = next((t for t, kbit in series if t >= record.fall_at and kbit < new_rate
                    and (record.recover_at is None or t <= record.recover_at)), None)
    if down_at is None:
        return
    metrics.fall_down_s = down_at - record.fall_at
    before = [kbit for t, kbit in series if t < record.fall_at]
    if record.recover_at is None or not before:
        return
    target = BACK_UP_FRACTION * statistics.median(before)
    up_at = next((t for t, kbit in series if t >= record.recover_at + FALL_WINDOW_S and kbit >= target), None)
    if up_at is not None:
        metrics.fall_up_s = up_at - record.recover_at


def video_level(sample: Sample) -> int | None:
    """How much video the server says it forwards to the site: per video slot its temporal layer + 1
    (1..3) while active, 0 while paused or empty. None: the page shows no slot states."""
    states = sample.page.get("layers") if sample.page else None
    if not states:
        return None
    return sum(int(e.get("layer", -1)) + 1 if e.get("state") == "active" else 0
               for slot_id, e in states.items() if slot_id == "stage-video" or slot_id.startswith("video-"))


def _layer_fall(record: RunRecord, samples: list[Sample], metrics: Metrics, cutoff: float) -> None:
    assert record.fall_at is not None
    fall_at = record.fall_at
    levels = [(s.t, video_level(s)) for s in samples if s.t < cutoff]
    before = [v for t, v in levels if v is not None and fall_at - 5 <= t < fall_at]
    if not before:
        return
    usual = statistics.median(before)
    down_at = next((t for t, v in levels if t >= fall_at and v is not None and v < usual), None)
    if down_at is None:
        return
    metrics.fall_layer_down_s = down_at - fall_at
    if record.recover_at is not None:
        up_at = next((t for t, v in levels if t >= record.recover_at and v is not None and v >= usual), None)
        if up_at is not None:
            metrics.fall_layer_up_s = up_at - record.recover_at


def _layer_summary(samples: list[Sample], metrics: Metrics) -> None:
    stage = [(s.page.get("layers") or {}).get("stage-video") for s in samples if s.page and s.page.get("layers")]
    if not stage:
        return
    names = [f"L{e.get('layer')}" if e and e.get("state") == "active" else (e or {}).get("state", "none")
             for e in stage]
    shares = sorted({n: names.count(n) for n in names}.items(), key=lambda kv: -kv[1])
    metrics.layers = "stage " + " ".join(f"{n} {100 * c / len(names):.0f}%" for n, c in shares)
    estimates = [s.page["link"]["estimate_kbps"] for s in samples
                 if s.page and s.page.get("link") and isinstance(s.page["link"].get("estimate_kbps"), (int, float))]
    if estimates:
        metrics.estimate_kbps = statistics.median(estimates)


def measure(record: RunRecord) -> Metrics:
    """The numbers of one run, over its measured part (samples at t >= 0)."""
    samples = [s for s in record.samples if s.t >= 0]
    interval = statistics.median(b.t - a.t for a, b in zip(samples, samples[1:])) if len(samples) > 1 else 0.0
    metrics = Metrics(profile=record.profile.name, seconds=0.0, interval_ms=1000 * interval,
                      setup_s=record.setup_s, run_s=record.total_s)
    if len(samples) < 3:
        return metrics
    duration = samples[-1].t - samples[0].t
    metrics.seconds = duration
    _audio(samples, metrics)
    _video(samples, metrics, duration)
    _relay(record, samples, metrics, duration)
    _fall(record, samples, metrics)
    pages = [s.page for s in samples if s.page is not None]
    _layer_summary(samples, metrics)
    stage_audio = [e for p in pages for e in p["elements"] if e["slotId"] == "stage-audio"]
    metrics.audio_elements_playing = bool(stage_audio) and all(not e["paused"] and not e["muted"] for e in stage_audio)
    shown = [(_stream(s, "stage-video") or {}).get("participantId") for s in samples]
    named = [p for p in shown if p is not None]
    if named and record.chair_id is not None:
        metrics.stage_held = sum(p == record.chair_id for p in named) / len(named)
    metrics.disconnected_s = sum(b.t - a.t for a, b in zip(samples, samples[1:])
                                 if a.page is None or b.page is None or a.page.get("phase") != "joined")
    if pages:
        metrics.reconnects = int(pages[-1].get("reconnects") or 0) - int(pages[0].get("reconnects") or 0)
    return metrics


def median_metrics(runs: Iterable[Metrics]) -> Metrics:
    """Each number the median over ``runs`` (None where no run measured it); flags: all runs."""
    runs = list(runs)
    out = Metrics(profile=runs[0].profile, seconds=0.0, interval_ms=0.0)
    for name, value in asdict(runs[0]).items():
        values = [getattr(r, name) for r in runs]
        if name == "profile":
            continue
        if isinstance(value, bool) or name == "audio_elements_playing":
            present = [v for v in values if v is not None]
            setattr(out, name, all(present) if present else None)
        elif name == "layers":
            setattr(out, name, "; ".join(sorted({v for v in values if v})) or None)
        elif name.startswith("fall_") and any(v is None for v in values):
            setattr(out, name, None)  # a run that never adapted fails the median too
        else:
            numbers = [v for v in values if v is not None]
            setattr(out, name, statistics.median(numbers) if numbers else None)
    return out
