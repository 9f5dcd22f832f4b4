"""Lean mode's proof of validity: decode a sample of the received stream with PyAV.

* Video: at most once per ``interval_s``, the next keyframe and the ``run - 1`` frames after it
  are reassembled from their RTP packets (RFC 7741 descriptors stripped, stamp left in place)
  and decoded with a fresh VP8 decoder; each decoded picture's bar code must match the stamp.
* Audio: one packet in ``every`` is decoded (stamped code 3 packet as received).
"""

from __future__ import annotations

import logging

import av

from .receive_stats import StreamCounter
from .stamp import Stamp

logger = logging.getLogger(__name__)


def vp8_descriptor(payload: bytes) -> tuple[int, bool, bool]:
    """(descriptor size, start of partition 0, keyframe) of an RFC 7741 payload; size 0 if bad."""
    if not payload:
        return 0, False, False
    b0 = payload[0]
    pos = 1
    if b0 & 0x80:
        if len(payload) < 2:
            return 0, False, False
        x = payload[1]
        pos = 2
        if x & 0x80:
            if len(payload) <= pos:
                return 0, False, False
            pos += 2 if payload[pos] & 0x80 else 1
        if x & 0x40:
            pos += 1
        if x & 0x30:
            pos += 1
    if len(payload) <= pos:
        return 0, False, False
    start = bool(b0 & 0x10) and not b0 & 0x07
    return pos, start, start and not payload[pos] & 0x01


class VideoSampler:
    def __init__(self, counter: StreamCounter, *, interval_s: float = 1.0, run: int = 3) -> None:
        self.counter = counter
        self.interval_us = int(interval_s * 1_000_000)
        self.run = run
        self.samples = 0
        self.incomplete = 0
        self._decoder: av.CodecContext | None = None
        self._remaining = 0
        self._last_start_us = -(10**18)
        self._parts: list[bytes] | None = None
        self._next_seq = 0

    def on_packet(self, seq: int, marker: int, payload: bytes, stamp: Stamp | None, arrival_us: int,
                  timestamp: int | None = None) -> None:
        size, start, keyframe = vp8_descriptor(payload)
        if size == 0:
            return
        if start:
            if self._decoder is None and keyframe and arrival_us - self._last_start_us >= self.interval_us:
                self._decoder = av.CodecContext.create("vp8", "r")
                self._remaining = self.run
                self._last_start_us = arrival_us
            self._parts = [] if self._decoder is not None else None
            self._next_seq = seq
        parts = self._parts
        if parts is None:
            return
        if seq != self._next_seq:
            self._abandon()
            return
        parts.append(payload[size:])
        self._next_seq = (seq + 1) & 0xFFFF
        if marker:
            self._parts = None
            self._decode(b"".join(parts), stamp, timestamp)

    def _abandon(self) -> None:
        self.incomplete += 1
        self._parts = None
        self._decoder = None

    def _decode(self, frame: bytes, stamp: Stamp | None, timestamp: int | None = None) -> None:
        decoder = self._decoder
        if decoder is None:
            return
        self.samples += 1
        try:
            for picture in decoder.decode(av.Packet(frame)):
                self.counter.on_decoded_video(picture, stamp, check_freeze=False, timestamp=timestamp)
        except av.FFmpegError as exc:
            self.counter.decode_errors += 1
            logger.debug("sampled VP8 frame failed to decode: %s", exc)
            self._decoder = None
            return
        self._remaining -= 1
        if self._remaining <= 0:
            self._decoder = None


class AudioSampler:
    """Decodes ``run`` consecutive packets out of every ``every``; only the last ``run - 2`` of a
    run count for the energy (the first ones re-converge the decoder after the skipped packets)."""

    def __init__(self, counter: StreamCounter, *, every: int = 50, run: int = 5) -> None:
        self.counter = counter
        self.every = max(every, run)
        self.run = run
        self.samples = 0
        self._seen = 0
        self._decoder: av.CodecContext | None = None

    def on_packet(self, payload: bytes) -> None:
        position = self._seen % self.every
        self._seen += 1
        if position >= self.run:
            return
        if self._decoder is None:
            self._decoder = av.CodecContext.create("opus", "r")
            self._decoder.sample_rate = 48000
            self._decoder.layout = "mono"
        self.samples += 1
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except av.FFmpegError as exc:
            self.counter.decode_errors += 1
            logger.debug("sampled Opus packet failed to decode: %s", exc)
            return
        for frame in frames:
            if position >= 2:
                self.counter.on_decoded_audio(frame)
            else:
                self.counter.decoded_frames += 1
