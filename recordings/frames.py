"""Encoded frames from RTP packets, without decoding: VP8 (RFC 7741) and Opus (RFC 7587).

:class:`Vp8Assembler` strips each packet's VP8 payload descriptor and joins a frame's packets
(same RTP timestamp, from the packet with S=1 and partition 0 to the marker bit). Packets may
arrive out of order (a retransmission recovers a loss ~one round trip later): a frame is
emitted once all its packets are there, frames strictly in sequence order. A frame still
incomplete after ``wait_ms`` (or with more than ``max_packets`` waiting behind it) is given up:
it and every delta frame after it are dropped until the next keyframe, because a decoder could
not use them, and ``needs_keyframe`` tells the owner to ask the publisher for one.

Opus needs no assembly: one packet, one frame (:func:`opus_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass

from media.rtp_packet import RtpPacketView

#: How long an incomplete frame is waited for (a NACK round trip and a retry on a poor link).
DEFAULT_WAIT_MS = 600
#: Packets held behind an incomplete frame before it is given up regardless of time.
DEFAULT_MAX_PACKETS = 2048


@dataclass(frozen=True)
class EncodedFrame:
    rtp_timestamp: int
    arrival_ms: int
    data: bytes
    keyframe: bool
    #: Packets the frame was carried in.
    packets: int
    width: int = 0
    height: int = 0


def vp8_payload_offset(payload: bytes) -> int:
    """Length of the VP8 payload descriptor at the start of ``payload``; ValueError if truncated."""
    size = len(payload)
    if size < 1:
        raise ValueError("VP8 payload is empty")
    pos = 1
    if payload[0] & 0x80:
        if size < 2:
            raise ValueError("VP8 payload descriptor is truncated (X)")
        x = payload[1]
        pos = 2
        if x & 0x80:
            if size <= pos:
                raise ValueError("VP8 payload descriptor is truncated (PictureID)")
            pos += 2 if payload[pos] & 0x80 else 1
        if x & 0x40:
            pos += 1
        if x & 0x30:
            pos += 1
    if size <= pos:
        raise ValueError("VP8 packet carries no VP8 data")
    return pos


def vp8_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) when ``frame`` (a whole VP8 frame) is a keyframe, else None."""
    if len(frame) < 10 or frame[0] & 0x01:
        return None
    if frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = (frame[6] | (frame[7] << 8)) & 0x3FFF
    height = (frame[8] | (frame[9] << 8)) & 0x3FFF
    return width, height


@dataclass
class _Part:
    timestamp: int
    start: bool
    marker: bool
    arrival_ms: int
    data: bytes


@dataclass
class AssemblerStats:
    packets: int = 0
    frames: int = 0
    keyframes: int = 0
    #: Frames given up (a packet never came), and delta frames dropped after them.
    frames_lost: int = 0
    frames_dropped: int = 0
    malformed: int = 0
    duplicates: int = 0
    late: int = 0


class Vp8Assembler:
    """RTP packets of one VP8 stream in, whole frames out (see the module docstring)."""

    def __init__(self, *, wait_ms: int = DEFAULT_WAIT_MS, max_packets: int = DEFAULT_MAX_PACKETS) -> None:
        self.wait_ms = wait_ms
        self.max_packets = max_packets
        self.stats = AssemblerStats()
        #: A frame was lost and no keyframe followed yet: the owner should request one.
        self.needs_keyframe = True
        self._parts: dict[int, _Part] = {}
        #: Extended sequence number of the next packet to emit from (None before the first).
        self._next: int | None = None
        self._highest = 0
        self._started = False

    def _extend(self, seq: int) -> int:
        if self._next is None:
            return seq + (1 << 16)
        base = self._highest
        diff = (seq - base) & 0xFFFF
        if diff >= 0x8000:
            diff -= 0x10000
        return base + diff

    def push(self, packet: RtpPacketView) -> list[EncodedFrame]:
        """Add one packet; returns the frames it completed (in order)."""
        stats = self.stats
        stats.packets += 1
        payload = packet.payload
        try:
            offset = vp8_payload_offset(payload)
        except ValueError:
            stats.malformed += 1
            return []
        b0 = payload[0]
        ext = self._extend(packet.sequence_number)
        if self._next is None:
            if not (b0 & 0x10 and not b0 & 0x07):
                return []  # wait for the start of a frame
            self._next = self._highest = ext
        if ext < self._next:
            stats.late += 1
            return []
        if ext in self._parts:
            stats.duplicates += 1
            return []
        if ext > self._highest:
            self._highest = ext
        self._parts[ext] = _Part(packet.timestamp, bool(b0 & 0x10 and not b0 & 0x07), bool(packet.marker),
                                 packet.arrival_ms, payload[offset:])
        return self._drain(packet.arrival_ms)

    def _drain(self, now_ms: int) -> list[EncodedFrame]:
        out: list[EncodedFrame] = []
        parts = self._parts
        while parts and self._next is not None:
            first = parts.get(self._next)
            if first is not None and not first.start:
                # Not a frame start where one must be: the rest of a frame we gave up.
                del parts[self._next]
                self._next += 1
                continue
            frame_end = None
            if first is not None:
                seq = self._next
                while True:
                    part = parts.get(seq)
                    if part is None or part.timestamp != first.timestamp:
                        break
                    if part.marker:
                        frame_end = seq
                        break
                    seq += 1
            if frame_end is not None:
                self._emit(out, self._next, frame_end)
                continue
            oldest = next(iter(parts.values())).arrival_ms  # parts are kept in arrival order
            if now_ms - oldest < self.wait_ms and len(parts) < self.max_packets:
                break
            self._give_up()
        return out

    def _emit(self, out: list[EncodedFrame], begin: int, end: int) -> None:
        parts = [self._parts.pop(s) for s in range(begin, end + 1)]
        self._next = end + 1
        data = b"".join(p.data for p in parts)
        size = vp8_keyframe_size(data)
        stats = self.stats
        if size is None and self.needs_keyframe:
            stats.frames_dropped += 1
            return
        if size is not None:
            self.needs_keyframe = False
            stats.keyframes += 1
        stats.frames += 1
        width, height = size or (0, 0)
        out.append(EncodedFrame(parts[0].timestamp, parts[0].arrival_ms, data, size is not None, len(parts),
                                width, height))

    def _give_up(self) -> None:
        """The frame at ``_next`` will not complete: skip to the next frame start that follows a gap."""
        parts = self._parts
        assert self._next is not None
        self.stats.frames_lost += 1
        self.needs_keyframe = True
        starts = sorted(s for s, p in parts.items() if p.start and s > self._next)
        first = parts.get(self._next)
        lost_ts = first.timestamp if first is not None else None
        for seq in starts:
            if parts[seq].timestamp != lost_ts:
                for old in [s for s in parts if s < seq]:
                    del parts[old]
                self._next = seq
                return
        parts.clear()
        self._next = self._highest + 1

    def flush_stale(self, now_ms: int) -> list[EncodedFrame]:
        """Give up what waited too long even when no packet arrives (the recorder's timer calls this)."""
        return self._drain(now_ms) if self._parts else []


def opus_frame(packet: RtpPacketView) -> EncodedFrame | None:
    """The Opus frame of one packet (None when it carries nothing: padding only)."""
    payload = packet.payload
    if not payload:
        return None
    return EncodedFrame(packet.timestamp, packet.arrival_ms, payload, True, 1)
