"""The stamp a bot puts in every audio packet and every video frame: frame counter and send time.

A stamp is 24 bytes at the very end of the codec payload, so it survives anything that forwards
payloads unchanged (the SFU rewrites SSRC, sequence number, timestamp, payload type and header
extensions, and RTX wrapping/unwrapping, but never touches payload bytes)::

    counter u32 | loop index u16 | flags u16 | source u32 | send time u64 (µs, Unix epoch) | magic "CbS2"

``source`` is the publisher's identity, :func:`source_tag` of its participant id (0: not stamped):
a subscriber receiving through slots, whose SSRC and timestamps are the slot's whoever it carries,
compares it with the participant the ``slot`` events name for that frame's RTP timestamp.

* Opus (RFC 6716 §3.2.5): the single 20 ms frame is re-framed as a code 3 packet (one CBR frame)
  with 20 bytes of padding, and the stamp *is* the padding. Decoders must accept any padding
  value (RFC 6716 asks encoders to write zeros; this is the one deliberate deviation, and PyAV's
  ``opus`` and ``libopus`` decoders decode the stamped packets bit-exactly).
* VP8: the stamp is appended after the frame's data; the bool decoder never reads past the data
  the encoder flushed, so decoding is bit-exact (verified with PyAV's ``vp8`` and ``libvpx``).
  In RTP it ends the frame's last packet (the one with the marker bit).
"""

from __future__ import annotations

import struct
import time
import zlib
from typing import NamedTuple

from .errors import MediaFileError

MAGIC = b"CbS2"
STAMP = struct.Struct("!IHHIQ4s")
STAMP_SIZE = STAMP.size  # 24
FLAG_KEYFRAME = 0x0001
FLAG_SPEAKING = 0x0002


class Stamp(NamedTuple):
    counter: int
    index: int
    flags: int
    send_us: int
    #: The publisher's :func:`source_tag` (0: none).
    source: int = 0


def now_us() -> int:
    return time.time_ns() // 1000


def source_tag(participant_id: str | None) -> int:
    """The 32-bit identity stamped by the publisher ``participant_id`` (CRC-32; 0 for None)."""
    if not participant_id:
        return 0
    return zlib.crc32(participant_id.encode()) or 1


def pack_stamp(counter: int, index: int, flags: int, send_us: int, source: int = 0) -> bytes:
    return STAMP.pack(counter & 0xFFFFFFFF, index & 0xFFFF, flags & 0xFFFF, source & 0xFFFFFFFF, send_us, MAGIC)


def read_stamp(payload: bytes) -> Stamp | None:
    """The stamp at the end of ``payload`` (RTP padding already removed), or None."""
    if len(payload) < STAMP_SIZE or payload[-4:] != MAGIC:
        return None
    counter, index, flags, source, send_us, _ = STAMP.unpack_from(payload, len(payload) - STAMP_SIZE)
    return Stamp(counter, index, flags, send_us, source)


def opus_stamp_head(packet: bytes) -> bytes:
    """Re-frame a code 0 Opus packet as code 3 with ``STAMP_SIZE`` padding bytes still to append.

    The result plus :func:`pack_stamp` output is a valid Opus packet carrying the same frame.
    """
    if not packet or packet[0] & 0x03:
        raise MediaFileError("only single-frame (code 0) Opus packets can be stamped")
    # TOC with c=3; frame count byte: v=0 (CBR), p=1 (padding), M=1; padding length byte.
    return bytes((packet[0] | 0x03, 0x41, STAMP_SIZE)) + packet[1:]


def opus_unstamped(packet: bytes) -> bytes:
    """The plain code 0 packet inside a stamped one (for tests and tools)."""
    if len(packet) < 3 + STAMP_SIZE or packet[0] & 0x03 != 3 or packet[1] != 0x41 or packet[2] != STAMP_SIZE:
        raise ValueError("not a stamped Opus packet")
    return bytes((packet[0] & 0xFC,)) + packet[3:-STAMP_SIZE]
