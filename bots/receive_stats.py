"""Per-stream receive accounting shared by full and lean subscribers (cheap, no decoding).

Fed with each decrypted RTP packet of one remote stream (RTX already unwrapped): counts packets
and frames, finds losses from sequence gaps (a retransmission that fills a gap recovers it),
reads the stamp (:mod:`bots.stamp`) for the latency and the frame counter, detects freezes from
the gaps between frames, and estimates latency a second way from the RTP timestamp and the
server-translated sender reports.

Temporal layers: video frames are counted per TID (RFC 7741 descriptor; none: TID 0). The server
may forward only TL0 or TL0+TL1 to a subscriber; it renumbers sequence numbers and PictureIDs
over the frames it forwards, so a frame it never forwarded leaves a gap in the stamped frame
counter but none in the PictureIDs, while a frame lost on the way leaves a gap in both. Frames
missing from the counters beyond the PictureID gap are therefore *not forwarded*
(``frames_not_forwarded``), not lost (``frames_missing``); and a freeze is a gap above
max(200 ms, 3 intervals) at the rate of the frames forwarded (800 ms for TL0 alone at 15 fps).

Slots: a stream is one slot of the receiving connection (``slot_id``), one continuous RTP stream
whoever it carries. :meth:`StreamCounter.apply_slot` takes the slot's ``slot`` events (in sequence
order; older ones are ignored) and keeps a timeline of who the slot carries from which RTP timestamp
on. Every stamped video frame (and, full mode, every decoded picture, through its RTP timestamp,
which the bot makes its pts) is checked against it: its stamp's ``source`` must be the
:func:`bots.stamp.source_tag` of the participant the timeline names at that frame's RTP timestamp. A frame is checked :data:`SETTLE_US` after it arrived,
so that a ``slot`` event still travelling over signaling is not taken for a mismatch.
"""

from __future__ import annotations

import array
import math
from collections import OrderedDict, deque
from typing import Any

from av import AudioFrame, VideoFrame

from media.rtp_packet import NTP_EPOCH_OFFSET

from .picture import read_index
from .report import StreamReport, percentile
from .stamp import Stamp, now_us, read_stamp, source_tag

MAX_GAP = 3000
MAX_SAMPLES = 200_000
FREEZE_MIN_MS = 200.0
#: A received frame is checked against the slot's timeline this long after it arrived.
SETTLE_US = 2_000_000
TIMELINE_MAX = 128
HALF = 0x80000000
GAP_ALLOWANCES_KEPT = 256
#: A gap in RTP time longer than this between two frames of one source is not a run of frames
#: that were not forwarded (their media time is no freeze allowance).
MAX_GAP_MEDIA_US = 10_000_000


def vp8_layer_fields(payload: bytes) -> tuple[int, int, int]:
    """(PictureID, its modulus 2**7 or 2**15, TID) from an RFC 7741 payload descriptor; the
    PictureID is -1 (modulus 0) and the TID -1 when the descriptor has none (or is truncated)."""
    length = len(payload)
    if length < 2 or not payload[0] & 0x80:
        return -1, 0, -1
    x = payload[1]
    pos = 2
    picture_id, modulus = -1, 0
    if x & 0x80:
        if length <= pos:
            return -1, 0, -1
        if payload[pos] & 0x80:
            if length <= pos + 1:
                return -1, 0, -1
            picture_id, modulus = ((payload[pos] & 0x7F) << 8) | payload[pos + 1], 0x8000
            pos += 2
        else:
            picture_id, modulus = payload[pos], 0x80
            pos += 1
    if x & 0x40:
        pos += 1
    tid = payload[pos] >> 6 if x & 0x20 and length > pos else -1
    return picture_id, modulus, tid


class SlotTimeline:
    """Who a slot carries from which RTP timestamp on, from its ``slot`` events (sequence order)."""

    def __init__(self) -> None:
        self.sequence = 0
        #: (rtp_timestamp, participant_id, producer_id) of every switch that started a source.
        self.entries: deque[tuple[int, str | None, str | None]] = deque(maxlen=TIMELINE_MAX)
        self.participant_id: str | None = None
        self.producer_id: str | None = None
        self.switches = 0

    def apply(self, event: dict[str, Any]) -> bool:
        """Apply one ``slot`` event; False when it is older than the last one applied."""
        sequence = int(event.get("sequence") or 0)
        if sequence <= self.sequence:
            return False
        self.sequence = sequence
        self.participant_id = event.get("participant_id")
        self.producer_id = event.get("producer_id")
        self.switches += 1
        rtp_timestamp = event.get("rtp_timestamp")
        if self.producer_id is not None and isinstance(rtp_timestamp, int) and rtp_timestamp >= 0:
            self.entries.append((rtp_timestamp & 0xFFFFFFFF, self.participant_id, self.producer_id))
        return True

    def participant_at(self, timestamp: int) -> tuple[bool, str | None]:
        """(known, participant) for a frame with RTP ``timestamp``: the latest switch at or before it
        (32-bit wrap: ((ts - start) mod 2**32) < 2**31). Not known: no switch covers it yet."""
        for start, participant, _ in reversed(self.entries):
            if (timestamp - start) & 0xFFFFFFFF < HALF:
                return True, participant
        return False, None


class IdentityCheck:
    """Frames (RTP timestamp, stamped source, arrival µs) checked against a timeline once settled."""

    def __init__(self, timeline: SlotTimeline) -> None:
        self.timeline = timeline
        self.pending: deque[tuple[int, int, int]] = deque()
        self.checked = 0
        self.mismatches = 0
        self.unknown = 0
        #: The first few mismatches: (rtp timestamp, stamped source, source the timeline names, participant).
        self.examples: list[tuple[int, int, int, str | None]] = []

    def add(self, timestamp: int, source: int, arrival_us: int) -> None:
        self.pending.append((timestamp, source, arrival_us))
        self.settle(arrival_us)

    def settle(self, now: int, settle_us: int = SETTLE_US) -> None:
        pending = self.pending
        while pending and now - pending[0][2] >= settle_us:
            timestamp, source, _ = pending.popleft()
            known, participant = self.timeline.participant_at(timestamp)
            if not known:
                self.unknown += 1
                continue
            self.checked += 1
            expected = source_tag(participant)
            if source != expected:
                self.mismatches += 1
                if len(self.examples) < 5:
                    self.examples.append((timestamp, source, expected, participant))


class StreamCounter:
    def __init__(self, kind: str, mid: str, clock_rate: int, frame_interval_s: float = 1 / 15,
                 slot_id: str | None = None, timeline: SlotTimeline | None = None) -> None:
        self.kind = kind
        self.mid = mid
        self.slot_id = slot_id
        self.timeline = timeline if timeline is not None else SlotTimeline()
        self.identity = IdentityCheck(self.timeline)
        self.decoded_identity = IdentityCheck(self.timeline)
        self._last_source: int | None = None
        #: Count freezes from frame arrivals (lean mode); full mode counts them from decoded frames.
        self.arrival_freezes = True
        self.clock_rate = clock_rate
        self.producer_id: str | None = None
        self.participant_id: str | None = None
        self.freeze_threshold_us = max(FREEZE_MIN_MS, 3000 * (frame_interval_s if kind == "video" else 0.02)) * 1000
        self.packets = 0
        self.frames = 0
        self.unstamped = 0
        self.frames_missing = 0
        #: Video frames received per TID, and frames the server did not forward (see the module doc).
        self.frames_per_tid = [0, 0, 0, 0]
        self.frames_not_forwarded = 0
        self.freezes = 0
        self.longest_freeze_us = 0
        self.freeze_us = 0
        self.decoded_frames = 0
        self.decode_errors = 0
        self.index_mismatches = 0
        self.nacks_sent = 0
        self.last_counter: int | None = None
        self.last_index: int | None = None
        self.latencies: list[float] = []
        self.sr_latencies: list[float] = []
        self.decoded_latencies: list[float] = []
        self._max_ext = -1
        self._first_ext = 0
        self._missing: set[int] = set()
        self._abandoned = 0
        self._first_frame_us = 0
        self._last_frame_us = 0
        self._last_decoded_us = 0
        #: PictureID (and its modulus) and RTP timestamp of the last stamped video frame.
        self._last_picture_id = -1
        self._picture_id_modulus = 0
        self._last_stamped_ts = 0
        #: Freeze allowance (µs, see :meth:`_count_gap`) by RTP timestamp, for decoded frames; and
        #: the allowances of the last frames received (see :meth:`_decoded_allowance`).
        self._gap_allowance: OrderedDict[int, int] = OrderedDict()
        self._recent_allowances: deque[int] = deque([0, 0], maxlen=2)
        self._sr: tuple[int, int] | None = None  # (send µs of the SR's NTP time, its RTP timestamp)
        self._stamps: OrderedDict[int, Stamp] = OrderedDict()
        self._energy_sum = 0.0
        self._energy_count = 0
        self._level_sum = 0
        self._level_count = 0
        #: Sequence numbers found missing by the last packet (for NACKs); empty most of the time.
        self.new_gap: list[int] = []

    # -- packets ----------------------------------------------------------------------------

    def on_packet(self, seq: int, timestamp: int, marker: int, payload: bytes, arrival_us: int, level: int = -1) -> Stamp | None:
        """Account one packet (payload without RTP padding); returns its stamp when it has one."""
        if self._max_ext < 0:
            self._max_ext = self._first_ext = seq
        else:
            top = self._max_ext
            delta = (seq - top) & 0xFFFF
            if delta == 0:
                return None  # duplicate
            if delta < 0x8000:
                if delta > 1:
                    gap = list(range(top + 1, top + min(delta, MAX_GAP)))
                    self._missing.update(gap)
                    self._abandoned += max(0, delta - MAX_GAP)
                    self.new_gap = gap
                self._max_ext = top + delta
            else:
                ext = top - ((top - seq) & 0xFFFF)
                if ext not in self._missing:
                    return None  # duplicate or too old
                self._missing.discard(ext)
        self.packets += 1
        if level >= 0:
            self._level_sum += level & 0x7F
            self._level_count += 1
        if self.kind == "video" and not marker:
            return None
        self.frames += 1
        picture_id, modulus, tid = vp8_layer_fields(payload) if self.kind == "video" else (-1, 0, -1)
        if self.kind == "video":
            self.frames_per_tid[max(tid, 0)] += 1
        stamp = read_stamp(payload)
        allowance_us = 0
        if stamp is not None:
            if stamp.source != self._last_source:  # the slot carries someone else: a new frame counter
                self._last_source = stamp.source
                self.last_counter = None
            if self.last_counter is not None:
                allowance_us = self._count_gap(stamp.counter, picture_id, modulus, timestamp)
            self.last_counter = stamp.counter
            self.last_index = stamp.index
            self._last_picture_id, self._picture_id_modulus, self._last_stamped_ts = picture_id, modulus, timestamp
        self._arrival_freeze(arrival_us, allowance_us)
        self._recent_allowances.append(allowance_us)
        if stamp is None:
            self.unstamped += 1
            return None
        self._add(self.latencies, (arrival_us - stamp.send_us) / 1000)
        if self._sr is not None:
            sr_us, sr_rtp = self._sr
            delta = ((timestamp - sr_rtp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            self._add(self.sr_latencies, (arrival_us - (sr_us + delta * 1_000_000 / self.clock_rate)) / 1000)
        if self.kind == "video":
            self._stamps[timestamp] = stamp
            if len(self._stamps) > 256:
                self._stamps.popitem(last=False)
            if allowance_us:
                self._gap_allowance[timestamp] = allowance_us
                if len(self._gap_allowance) > GAP_ALLOWANCES_KEPT:
                    self._gap_allowance.popitem(last=False)
            if self.slot_id is not None:
                self.identity.add(timestamp, stamp.source, arrival_us)
        return stamp

    def _count_gap(self, counter: int, picture_id: int, modulus: int, timestamp: int) -> int:
        """Account the frames between the last stamped frame and this one (``counter``): those
        with a PictureID too are missing, the others were not forwarded. Returns the freeze
        allowance (µs): how much the freeze threshold grows when it is taken as 3 intervals of the
        frames forwarded rather than of all frames."""
        jump = (counter - self.last_counter) & 0xFFFFFFFF if self.last_counter is not None else 0
        if not 1 < jump < HALF:
            return 0
        skipped = 0
        usable = picture_id >= 0 and self._last_picture_id >= 0 and modulus == self._picture_id_modulus
        if usable and jump < modulus:  # (a longer gap may have wrapped the PictureIDs)
            step = (picture_id - self._last_picture_id) % modulus
            if 1 <= step <= jump:  # else: PictureIDs unusable (constant, reset): all frames are missing
                skipped = jump - step
        self.frames_missing += jump - 1 - skipped
        self.frames_not_forwarded += skipped
        if not skipped:
            return 0
        media_us = ((timestamp - self._last_stamped_ts) & 0xFFFFFFFF) * 1_000_000 // self.clock_rate
        if media_us >= MAX_GAP_MEDIA_US:  # not one stream's timeline: no allowance
            return 0
        forwarded = jump - skipped  # frames the server sent over this gap, this one included
        return max(0, 3 * media_us // forwarded - int(self.freeze_threshold_us))

    def _arrival_freeze(self, arrival_us: int, allowance_us: int) -> None:
        """Count a freeze when this frame arrived too long after the previous one (lean mode)."""
        if not self._first_frame_us:
            self._first_frame_us = arrival_us
        if self.arrival_freezes and self._last_frame_us:
            gap_us = arrival_us - self._last_frame_us
            if gap_us > self.freeze_threshold_us + allowance_us:
                self.freezes += 1
                self.freeze_us += gap_us
                self.longest_freeze_us = max(self.longest_freeze_us, gap_us)
        self._last_frame_us = arrival_us

    def _decoded_allowance(self, timestamp: int | None) -> int:
        """Freeze allowance for the decoded frame of RTP ``timestamp``: its own, or that of the last
        two frames received if larger (a receiver such as aiortc's releases a frame when the next
        one starts arriving, so the gap before a decoded picture is the gap before the frame after it)."""
        own = self._gap_allowance.pop(timestamp, 0) if timestamp is not None else 0
        return max(own, *self._recent_allowances)

    @property
    def frame_rate(self) -> float | None:
        """Video frames received per second, first to last frame (None before two frames)."""
        span_us = self._last_frame_us - self._first_frame_us
        if self.kind != "video" or self.frames < 2 or span_us <= 0:
            return None
        return round((self.frames - 1) * 1_000_000 / span_us, 2)

    def apply_slot(self, event: dict[str, Any]) -> bool:
        """A ``slot`` event for this stream's slot (ignored when older than the last applied)."""
        return self.timeline.apply(event)

    def settle(self, now: int | None = None) -> None:
        now = now_us() if now is None else now
        self.identity.settle(now)
        self.decoded_identity.settle(now)

    def on_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        send_us = int((ntp_timestamp / 4294967296.0 - NTP_EPOCH_OFFSET) * 1_000_000)
        self._sr = (send_us, rtp_timestamp)

    @staticmethod
    def _add(samples: list[float], value: float) -> None:
        if len(samples) < MAX_SAMPLES:
            samples.append(value)

    def stamp_for(self, timestamp: int) -> Stamp | None:
        return self._stamps.get(timestamp)

    @property
    def highest_sequence(self) -> int:
        return max(self._max_ext, 0)

    @property
    def lost(self) -> int:
        return len(self._missing) + self._abandoned

    @property
    def expected(self) -> int:
        return 0 if self._max_ext < 0 else self._max_ext - self._first_ext + 1

    # -- decoded media (full mode, and lean mode's samples) ---------------------------------

    def on_decoded_video(self, frame: VideoFrame, stamp: Stamp | None = None, *, check_freeze: bool = True,
                         timestamp: int | None = None) -> None:
        self.decoded_frames += 1
        now = now_us()
        allowance_us = self._decoded_allowance(timestamp)
        if check_freeze and self._last_decoded_us and now - self._last_decoded_us > self.freeze_threshold_us + allowance_us:
            self.freezes += 1
            self.freeze_us += now - self._last_decoded_us
            self.longest_freeze_us = max(self.longest_freeze_us, now - self._last_decoded_us)
        self._last_decoded_us = now
        shown = read_index(frame)
        if stamp is None and timestamp is not None:
            stamp = self._stamps.get(timestamp)
        if stamp is not None:
            if shown != stamp.index:
                self.index_mismatches += 1
            self._add(self.decoded_latencies, (now - stamp.send_us) / 1000)
            if self.slot_id is not None and timestamp is not None:
                self.decoded_identity.add(timestamp, stamp.source, now)
        else:
            self.index_mismatches += 1

    def on_decoded_audio(self, frame: AudioFrame) -> None:
        self.decoded_frames += 1
        name = frame.format.name
        typecode, scale = {"s16": ("h", 1.0), "s16p": ("h", 1.0), "flt": ("f", 32768.0), "fltp": ("f", 32768.0)}.get(name, ("", 0.0))
        if not typecode:
            return
        count = frame.samples * (1 if frame.format.is_planar else len(frame.layout.channels))
        samples = array.array(typecode)
        samples.frombytes(bytes(frame.planes[0])[: samples.itemsize * count])
        total = float(sum(s * s for s in samples))
        self._energy_sum += total * scale * scale
        self._energy_count += len(samples)

    # -- report -----------------------------------------------------------------------------

    def report(self, *, full_mode: bool) -> StreamReport:
        self.settle()
        expected = self.expected
        energy = None
        if self._energy_count:
            mean = self._energy_sum / self._energy_count
            energy = round(10 * math.log10(mean / 32768**2), 1) if mean > 0 else -120.0
        if self.slot_id is not None:  # who the slot carries now
            self.participant_id, self.producer_id = self.timeline.participant_id, self.timeline.producer_id
        return StreamReport(
            kind=self.kind,
            mid=self.mid,
            slot_id=self.slot_id,
            switches=self.timeline.switches,
            identity_checked=self.identity.checked,
            identity_mismatches=self.identity.mismatches,
            identity_unknown=self.identity.unknown,
            decoded_identity_checked=self.decoded_identity.checked,
            decoded_identity_mismatches=self.decoded_identity.mismatches,
            identity_mismatch_examples=[list(e) for e in self.identity.examples + self.decoded_identity.examples],
            producer_id=self.producer_id,
            participant_id=self.participant_id,
            packets=self.packets,
            frames_received=self.frames,
            lost_packets=self.lost,
            loss_percent=round(100 * self.lost / expected, 3) if expected else 0.0,
            frames_missing=self.frames_missing,
            frames_not_forwarded=self.frames_not_forwarded,
            frames_per_tid=list(self.frames_per_tid) if self.kind == "video" else [],
            frame_rate=self.frame_rate,
            freezes=self.freezes,
            freeze_ms=round(self.freeze_us / 1000, 1),
            longest_freeze_ms=round(self.longest_freeze_us / 1000, 1),
            latency_ms_p50=percentile(self.latencies, 50),
            latency_ms_p95=percentile(self.latencies, 95),
            latency_ms_p99=percentile(self.latencies, 99),
            sr_latency_ms_p50=percentile(self.sr_latencies, 50),
            decoded_frames=self.decoded_frames,
            decode_errors=self.decode_errors,
            decoded_latency_ms_p50=percentile(self.decoded_latencies, 50) if full_mode else None,
            index_mismatches=self.index_mismatches,
            last_counter=self.last_counter,
            last_index=self.last_index,
            audio_energy_dbfs=energy,
            audio_level_mean=round(self._level_sum / self._level_count, 1) if self._level_count else None,
            unstamped_packets=self.unstamped,
            nacks_sent=self.nacks_sent,
        )
