"""Bot reports: what a bot sent and, per remote producer, what it received. JSON-serialisable."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 2)


@dataclass
class PublishReport:
    audio_packets: int = 0
    video_packets: int = 0
    video_frames: int = 0
    #: Video frames sent per temporal layer (TID 0..3); a single-layer loop is all TID 0.
    frames_per_tid: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    keyframes_sent: int = 0
    bytes_sent: int = 0
    send_failures: int = 0
    #: Times the send loop fell more than 250 ms behind (event loop stalled) and skipped ahead.
    late_skips: int = 0
    sender_reports: int = 0
    nacks_received: int = 0
    retransmitted: int = 0
    keyframe_requests: int = 0
    #: Fraction lost on the way to the server, per kind, from the server's receiver reports.
    upstream_fraction_lost: dict[str, float] = field(default_factory=dict)
    rtt_ms: float | None = None


@dataclass
class StreamReport:
    """What one subscriber received on one slot of its receiving connection (``participant_id`` /
    ``producer_id``: who the slot carries now, from the ``slot`` events)."""

    kind: str
    mid: str
    producer_id: str | None = None
    participant_id: str | None = None
    slot_id: str | None = None
    #: ``slot`` events applied to this slot (the first assignment counts).
    switches: int = 0
    #: Stamped video frames checked against the slot map (the participant named for the slot at
    #: the frame's RTP timestamp), and those whose stamp named someone else; unknown: frames no
    #: ``slot`` event covered.
    identity_checked: int = 0
    identity_mismatches: int = 0
    identity_unknown: int = 0
    #: The same for decoded pictures (full mode; lean mode: its sampled pictures).
    decoded_identity_checked: int = 0
    decoded_identity_mismatches: int = 0
    #: A few mismatches: [rtp timestamp, stamped source, source named by the slot map, participant].
    identity_mismatch_examples: list[list[Any]] = field(default_factory=list)
    packets: int = 0
    #: Video: frames whose last packet arrived; audio: packets (one 20 ms frame each).
    frames_received: int = 0
    lost_packets: int = 0
    loss_percent: float = 0.0
    #: Frames the sender counted but this receiver never saw (from the stamped counters), except
    #: those the server did not forward.
    frames_missing: int = 0
    #: Frames of a temporal layer the server did not forward to this subscriber (a gap in the
    #: stamped counters without one in the renumbered PictureIDs); not lost, not in frames_missing.
    frames_not_forwarded: int = 0
    #: Video frames received per temporal layer (TID 0..3; a stream without TIDs is all TID 0).
    frames_per_tid: list[int] = field(default_factory=list)
    #: Video frames received per second, from the first frame's arrival to the last's.
    frame_rate: float | None = None
    #: Gaps between frames above max(200 ms, 3 frame intervals); their total duration.
    freezes: int = 0
    freeze_ms: float = 0.0
    longest_freeze_ms: float = 0.0
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    latency_ms_p99: float | None = None
    #: Latency from the RTP timestamp through the (server-translated) sender reports.
    sr_latency_ms_p50: float | None = None
    decoded_frames: int = 0
    decode_errors: int = 0
    #: Full mode: send -> decoded, median.
    decoded_latency_ms_p50: float | None = None
    #: Decoded frames whose bar code disagrees with the stamp of the frame that carried it.
    index_mismatches: int = 0
    last_counter: int | None = None
    last_index: int | None = None
    audio_energy_dbfs: float | None = None
    audio_level_mean: float | None = None
    unstamped_packets: int = 0
    nacks_sent: int = 0


def _per_tid(frames_per_tid: list[int]) -> str:
    """", per TID a/b/c" for frames of several temporal layers; "" for a single-layer stream."""
    if sum(1 for n in frames_per_tid if n) < 2:
        return ""
    top = max(i for i, n in enumerate(frames_per_tid) if n)
    return ", per TID " + "/".join(map(str, frames_per_tid[: top + 1]))


@dataclass
class ConnectionInterval:
    """One signaling connection as the bot saw it: wall-clock UTC ISO 8601 times (milliseconds)."""

    connected_at: str
    joined_at: str | None = None
    #: When the connection ended: lost, or closed by the bot itself (``end_reason`` "left"); None: still up.
    ended_at: str | None = None
    end_reason: str | None = None
    participant_id: str | None = None


def merge_publish(reports: list[PublishReport]) -> PublishReport | None:
    """One PublishReport for a bot's successive publishers: counters add up; the latest connection's
    loss and round-trip time."""
    if not reports:
        return None
    merged = PublishReport()
    for report in reports:
        for name, value in vars(report).items():
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(merged, name, getattr(merged, name) + value)
        merged.frames_per_tid = [a + b for a, b in zip(merged.frames_per_tid, report.frames_per_tid)]
    merged.upstream_fraction_lost = dict(reports[-1].upstream_fraction_lost)
    merged.rtt_ms = reports[-1].rtt_ms
    return merged


@dataclass
class BotReport:
    name: str
    mode: str
    seconds: float = 0.0
    participant_id: str | None = None
    publish: PublishReport | None = None
    streams: list[StreamReport] = field(default_factory=list)
    dominant_speaker: str | None = None
    events: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: Times the bot got back in (connected, joined, published and subscribed again) after a loss.
    reconnects: int = 0
    #: Every signaling connection the bot made (a failed attempt that never connected is not one).
    connections: list[ConnectionInterval] = field(default_factory=list)
    #: Whether the bot would reconnect after a loss (off: --no-reconnect; impossible: a bare --token).
    reconnect: str = "on"
    #: Why the bot stopped trying to reconnect (a fatal refusal, reconnection off or impossible), if it did.
    gave_up: str | None = None
    #: Who each slot of the (current) receiving connection carries, from the ``slot`` events.
    slots: dict[str, str | None] = field(default_factory=dict)
    #: Server ``offer`` events after the join: slots are negotiated once, so this must be 0 (each is
    #: also in ``errors``).
    offers_after_join: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def summary(self) -> str:
        """A human-readable multi-line summary."""
        lines = [f"bot {self.name} ({self.mode}) ran {self.seconds:.1f} s, participant {self.participant_id or '-'}"]
        if self.publish is not None:
            p = self.publish
            lines.append(
                f"  sent: {p.audio_packets} audio packets, {p.video_frames} video frames ({p.video_packets} packets, "
                f"{p.keyframes_sent} keyframes{_per_tid(p.frames_per_tid)}), {p.bytes_sent / 1000:.0f} kB; NACKs {p.nacks_received}, "
                f"retransmitted {p.retransmitted}, keyframe requests {p.keyframe_requests}, late skips {p.late_skips}"
            )
        for s in self.streams:
            who = f"{s.slot_id or 'mid ' + s.mid} ({s.participant_id or 'empty'})"
            latency = "-" if s.latency_ms_p50 is None else f"{s.latency_ms_p50}/{s.latency_ms_p95}/{s.latency_ms_p99} ms"
            line = (
                f"  {s.kind:5} {who}: {s.frames_received} frames, {s.packets} packets, loss {s.loss_percent:.2f}%, "
                f"missing frames {s.frames_missing}, freezes {s.freezes} ({s.freeze_ms:.0f} ms), latency p50/95/99 {latency}, "
                f"decoded {s.decoded_frames} (errors {s.decode_errors}, index mismatches {s.index_mismatches})"
            )
            if s.kind == "video" and (s.frames_not_forwarded or sum(1 for n in s.frames_per_tid if n) > 1):
                line += (f", per TID {'/'.join(map(str, s.frames_per_tid))}, not forwarded {s.frames_not_forwarded}, "
                         f"{s.frame_rate or 0:.1f} fps")
            if s.kind == "video" and s.slot_id is not None:
                line += (f", switches {s.switches}, identity checked {s.identity_checked} (mismatches "
                         f"{s.identity_mismatches}), decoded {s.decoded_identity_checked} ({s.decoded_identity_mismatches})")
            if s.audio_energy_dbfs is not None:
                line += f", energy {s.audio_energy_dbfs:.1f} dBFS"
            lines.append(line)
        if self.dominant_speaker:
            lines.append(f"  dominant speaker: {self.dominant_speaker}")
        if self.slots:
            lines.append(f"  stage: {self.slots.get('stage-video')}; offers after join: {self.offers_after_join}")
        if self.reconnects or len(self.connections) > 1 or self.gave_up:
            lines.append(f"  reconnects: {self.reconnects} (reconnection {self.reconnect})")
            for c in self.connections:
                ended = f"{c.ended_at} ({c.end_reason})" if c.ended_at else "still connected"
                lines.append(f"  connection: {c.connected_at}, joined {c.joined_at or '-'}, ended {ended}")
        for error in self.errors:
            lines.append(f"  error: {error}")
        return "\n".join(lines)
