"""Thinning one VP8 stream to its lower temporal layers, renumbered so that what goes shows no gap.

Both ends that forward a stream to fewer layers than it has use one :class:`LayerThinning`: a slot
(:mod:`media.slot_layers`: what a subscriber's budget allows) and a pipe's tap (:mod:`media.pipe`:
what the link's cap allows). An L1T3 stream: TL0 a quarter of the frames, TL1 a quarter, TL2 half.

- Layers ``0..target`` go. Down at the next frame boundary (the frame being sent, ``kept_ts``, is
  finished), up only at a layer-sync frame (Y bit) or a keyframe of a wanted layer; while a change
  up waits, the source is asked for a keyframe every :data:`UPSWITCH_KEYFRAME_MS`.
- A dropped packet takes no sequence number and a dropped frame no PictureID: ``seq_offset`` /
  ``pid_offset`` (what the owner adds to the source's numbers) close up over them, so the far end's
  NACK tracker and frame buffer see no gap. TL0PICIDX counts TL0 frames, never dropped: it needs nothing.
- A packet not newer than the newest sent (reordered, or recovered upstream by a retransmission) is
  *placed* (:meth:`LayerThinning.place_late`): it goes under the number the drops after it left for
  it when its frame went, or would have gone (the layer in force where it sits: the changes are
  remembered by source sequence number), and is refused when its frame was dropped. (A packet lost
  upstream in a frame that is dropped kept its number: the far end asks for it in vain.)

The owner keeps the hot path: per packet it compares ``packet.tid`` with ``pass_tid`` (every packet
at or below it goes without a look) and only calls :meth:`LayerThinning.keep` above it; it adds the
offsets itself, calls :meth:`LayerThinning.place_late` for a packet not newer than its newest, and
sets ``kept_ts`` to each sent packet's timestamp.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from .keyframe import is_keyframe
from .rtp_packet import RtpPacketView, monotonic_ms
from .vp8_descriptor import NONE, source_picture_id

#: The highest VP8 temporal layer (L1T3: TL0, TL1, TL2); :data:`PAUSED`: no video at all (a slot's).
TOP_LAYER = 2
PAUSED = -1
#: Source sequence numbers / PictureIDs / timestamps of dropped packets / frames remembered to place a
#: late packet (one that arrives after newer ones were numbered) in the renumbered sequence.
MAX_DROPS = 512
#: Layer changes remembered (by source sequence number) to tell the layer in force where a late packet sits.
MAX_CHANGES = 16
#: While a higher layer is wanted and no layer-sync frame comes, ask the source for a keyframe this often.
UPSWITCH_KEYFRAME_MS = 3000


class LayerCounters(Protocol):
    """Where a thinning counts what it did (a slot's or a pipe's stats)."""

    layer_drops: int
    layer_switches: int


class LayerThinning:
    """Which temporal layers of one stream go, and the numbering over what does not (see the module docstring)."""

    __slots__ = ("target", "layer", "pass_tid", "seq_offset", "pid_offset", "kept_ts", "_codec_name",
                 "_vp8", "_stats", "_ask_keyframe", "_on_pause", "_dropped_ts", "_dropped_seqs", "_dropped_pids",
                 "_dropped_frames", "_changes", "_upswitch_since_ms")

    def __init__(self, stats: LayerCounters, ask_keyframe: Callable[[], None], *, codec_name: str = "VP8",
                 on_pause: Callable[[], None] | None = None) -> None:
        #: The highest layer wanted (:data:`PAUSED`: none; then :meth:`keep` calls ``on_pause``).
        self.target = TOP_LAYER
        #: The highest layer forwarded now (it changes only at frame boundaries, up only at sync frames).
        self.layer = TOP_LAYER
        #: The highest TID that goes without a look (-1 while a change waits: every packet is looked at).
        self.pass_tid = TOP_LAYER
        #: Added to the source's sequence number / PictureID (the owner's start offset, less the drops).
        self.seq_offset = 0
        self.pid_offset = 0
        #: Source timestamp of the frame being sent (its packets all go, whatever the layer becomes).
        self.kept_ts = -1
        self._codec_name = codec_name
        self._vp8 = codec_name.upper() == "VP8"
        self._stats = stats
        self._ask_keyframe = ask_keyframe
        self._on_pause = on_pause
        self._dropped_ts = -1
        self._dropped_seqs: deque[int] = deque(maxlen=MAX_DROPS)
        self._dropped_pids: deque[int] = deque(maxlen=MAX_DROPS)
        self._dropped_frames: deque[int] = deque(maxlen=MAX_DROPS)
        #: (source seq from which, layer forwarded, timestamp of the frame sent whole across the change:
        #: the frame finished at a change down, the frame a change up started at; -1: none).
        self._changes: deque[tuple[int, int, int]] = deque(maxlen=MAX_CHANGES)
        self._upswitch_since_ms = 0

    def set_codec(self, codec_name: str) -> None:
        self._codec_name = codec_name
        self._vp8 = codec_name.upper() == "VP8"

    def restart(self, first_seq: int, seq_offset: int, pid_offset: int) -> None:
        """A new run of numbering from the source's packet ``first_seq`` (a keyframe, or audio): every
        wanted layer may start here, nothing is dropped yet."""
        self.seq_offset = seq_offset
        self.pid_offset = pid_offset
        self.set_now(max(self.target, 0))
        self.kept_ts = self._dropped_ts = -1
        self._dropped_seqs.clear()
        self._dropped_pids.clear()
        self._dropped_frames.clear()
        self._changes.clear()
        self._changes.append((first_seq, self.layer, -1))

    def set_now(self, layer: int) -> None:
        """Forward ``layer`` from now on (the owner decided this is a point where it may change)."""
        self.layer = layer
        self.pass_tid = layer if self.target <= layer else -1

    def change_target(self, layer: int, newest_seq: int) -> None:
        """Want layers 0..``layer`` (not :data:`PAUSED`): down at once (the frame being sent goes on;
        ``newest_seq`` is the source number of the newest packet seen), up from the next layer-sync
        frame or keyframe."""
        self.target = layer
        if layer < self.layer:
            self.set_now(layer)
            self._changes.append((newest_seq, layer, self.kept_ts))
        elif layer > self.layer:
            self._upswitch_since_ms = monotonic_ms()
            self.pass_tid = -1  # look at every packet for a layer-sync frame or keyframe
        else:
            self.set_now(layer)  # a change up that had not happened yet is called off

    def keep(self, packet: RtpPacketView, max_seq: int) -> bool:
        """A packet above ``pass_tid``: True to send it (the rest of the frame being sent, or a frame
        where a wanted higher layer starts); else it is dropped (counted) and the numbers after it close
        up. A late packet (not newer than ``max_seq``, the owner's newest number out) changes nothing:
        True, for :meth:`place_late` to place or refuse by what went where it sits."""
        ts = packet.timestamp
        if ts == self.kept_ts:
            return True
        target = self.target
        if target == PAUSED:
            if self._on_pause is not None:
                self._on_pause()
            return False
        src = packet.sequence_number
        if not 0 < (src + self.seq_offset - max_seq) & 0xFFFF < 0x8000:
            return True  # late: placed, or refused, by what went where it sits (place_late)
        tid = packet.tid
        if tid <= target:
            if is_keyframe(self._codec_name, packet.payload):
                up = target
            elif packet.layer_sync and tid > self.layer:
                up = tid
            elif tid <= self.layer:
                return True  # a layer forwarded already (a change up is waited for)
            else:
                up = -1
            if up >= 0:
                if up > self.layer:
                    self._stats.layer_switches += 1
                    self._changes.append((src, up, ts))
                self.set_now(up)
                return True
            now = monotonic_ms()
            if now - self._upswitch_since_ms >= UPSWITCH_KEYFRAME_MS:
                self._upswitch_since_ms = now  # no layer-sync frame for a while: a keyframe starts every layer
                self._ask_keyframe()
        self._stats.layer_drops += 1
        self.seq_offset = (self.seq_offset - 1) & 0xFFFF
        self._dropped_seqs.append(src)
        if ts != self._dropped_ts:
            self._dropped_ts = ts
            self._dropped_frames.append(ts)
            pid = source_picture_id(packet.body) if self._vp8 else NONE
            if pid != NONE:
                self.pid_offset = (self.pid_offset - 1) & 0x7FFF
                self._dropped_pids.append(pid)
        return False

    def layer_at(self, src: int, ts: int) -> int:
        """The layer forwarded where source packet ``src`` (of the frame ``ts``) sits (:data:`TOP_LAYER`
        for a frame sent whole across a change); :data:`PAUSED` when that is older than the changes
        remembered."""
        for start, layer, whole_ts in reversed(self._changes):
            if ts == whole_ts:
                return TOP_LAYER
            if (src - start) & 0xFFFF < 0x8000:
                return layer
        return PAUSED

    def place_late(self, packet: RtpPacketView, seq: int) -> tuple[int, int] | None:
        """(sequence number, PictureID offset) of a packet older than the newest sent, after drops
        (``seq``: its number at the present offset): its own number is that plus the drops after it.
        None when its frame was dropped, or its layer was not forwarded where it sits."""
        src = packet.sequence_number
        ts = packet.timestamp
        if ts in self._dropped_frames:
            return None
        if packet.tid and packet.tid > self.layer_at(src, ts):
            return None
        later = sum(1 for d in self._dropped_seqs if 0 < (d - src) & 0xFFFF < 0x8000)
        pid_offset = self.pid_offset
        if self._dropped_pids:
            pid = source_picture_id(packet.body)
            if pid != NONE:
                pid_offset += sum(1 for d in self._dropped_pids if 0 < (d - pid) & 0x7FFF < 0x4000)
        return (seq + later) & 0xFFFF, pid_offset & 0x7FFF
