"""RTP packets on the forwarding path (RFC 3550, RFC 8285 header extensions, RFC 4588 RTX).

The forwarding path never builds aiortc ``RtpPacket`` objects: a decrypted datagram is parsed once
into an :class:`RtpPacketView` (header fields plus offsets into the original bytes), shared by every
slot carrying the packet, and each slot serializes its own rewritten header in front of the
shared payload (see :mod:`media.rewriter`).
"""

from __future__ import annotations

import struct
import time

RTP_VERSION = 2
RTP_HEADER_LENGTH = 12
ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE_MASK = 0xFFF0
TWO_BYTE_PROFILE = 0x1000

HEADER = struct.Struct("!BBHII")
HEADER_WITH_EXTENSION = struct.Struct("!BBHIIHH")
_UINT16 = struct.Struct("!H")
_EXT_HEADER = struct.Struct("!HH")

#: ``BYTES[i] == bytes([i])``: avoids allocating one-byte objects per packet.
BYTES: tuple[bytes, ...] = tuple(bytes([i]) for i in range(256))
#: ``PADDING[n]``: n zero bytes, to pad a header extension block to a multiple of 4.
PADDING: tuple[bytes, ...] = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")

# Seconds between the NTP epoch (1900) and the Unix epoch (1970).
NTP_EPOCH_OFFSET = 2208988800


def monotonic_ms() -> int:
    """Milliseconds of the monotonic clock: the time base of arrival times, history and NACKs."""
    return time.monotonic_ns() // 1_000_000


def ntp_now() -> int:
    """The current wall-clock time as a 64-bit NTP timestamp (32.32 fixed point)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 4294967296.0)


def abs_send_time_now() -> bytes:
    """The abs-send-time header extension value (6.18 fixed point seconds, 24 bits)."""
    return ((ntp_now() >> 14) & 0xFFFFFF).to_bytes(3, "big")


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: payload types 192..223 in the second byte mean RTCP."""
    return len(data) >= 2 and 192 <= data[1] <= 223


class RtpPacketView:
    """A parsed view of one decrypted RTP packet; the bytes are never copied or modified.

    ``body`` is the payload including any padding (it is forwarded unchanged); for an RTX packet
    that has been unwrapped (:meth:`unwrap_rtx`) the fields describe the original packet.
    """

    __slots__ = (
        "data",
        "marker",
        "payload_type",
        "sequence_number",
        "timestamp",
        "ssrc",
        "ext_profile",
        "ext_start",
        "ext_end",
        "payload_start",
        "padding_size",
        "body",
        "arrival_ms",
        "audio_level",
        "tid",
        "layer_sync",
    )

    def __init__(self) -> None:
        self.data = b""
        self.marker = 0
        self.payload_type = 0
        self.sequence_number = 0
        self.timestamp = 0
        self.ssrc = 0
        self.ext_profile = 0
        self.ext_start = 0
        self.ext_end = 0
        self.payload_start = RTP_HEADER_LENGTH
        self.padding_size = 0
        self.body = b""
        self.arrival_ms = 0
        #: Raw RFC 6464 byte (V bit | level) when read by the producer, else -1.
        self.audio_level = -1
        #: VP8 temporal layer (TID) and layer-sync (Y) bit, read once by the producer; a stream
        #: without temporal layers is all layer 0.
        self.tid = 0
        self.layer_sync = False

    @classmethod
    def parse(cls, data: bytes, arrival_ms: int = 0) -> RtpPacketView:
        """Parse ``data``; raise ValueError with the precise defect when it is malformed."""
        length = len(data)
        if length < RTP_HEADER_LENGTH:
            raise ValueError(f"RTP packet length {length} is less than {RTP_HEADER_LENGTH} bytes")
        b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
        if b0 >> 6 != RTP_VERSION:
            raise ValueError(f"RTP packet has invalid version {b0 >> 6}")
        pos = RTP_HEADER_LENGTH + 4 * (b0 & 0x0F)
        if length < pos:
            raise ValueError("RTP packet has truncated CSRC list")
        view = cls()
        if b0 & 0x10:
            if length < pos + 4:
                raise ValueError("RTP packet has truncated extension profile / length")
            profile, words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            end = pos + 4 * words
            if length < end:
                raise ValueError("RTP packet has truncated extension value")
            view.ext_profile = profile
            view.ext_start = pos
            view.ext_end = end
            pos = end
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or padding > length - pos:
                raise ValueError(f"RTP packet padding length {padding} is invalid")
            view.padding_size = padding
        view.data = data
        view.marker = b1 >> 7
        view.payload_type = b1 & 0x7F
        view.sequence_number = seq
        view.timestamp = ts
        view.ssrc = ssrc
        view.payload_start = pos
        view.body = data[pos:]
        view.arrival_ms = arrival_ms
        return view

    @property
    def payload(self) -> bytes:
        """The payload without padding."""
        return self.body[: -self.padding_size] if self.padding_size else self.body

    def replace_payload(self, payload_type: int, payload: bytes) -> None:
        """Carry ``payload`` (no padding) under ``payload_type`` instead (a RED packet stripped to
        its primary block): what is forwarded, stored and recorded is the body."""
        self.payload_type = payload_type
        self.body = payload
        self.padding_size = 0

    def extension(self, ext_id: int) -> bytes | None:
        """The value of header extension ``ext_id``, or None when absent."""
        if not ext_id or not self.ext_end:
            return None
        return find_extension(self.data, self.ext_start, self.ext_end, self.ext_profile, ext_id)

    def unwrap_rtx(self, payload_type: int, ssrc: int) -> None:
        """Turn this RTX packet (RFC 4588) into a view of the original packet, in place."""
        start = self.payload_start
        if len(self.data) - self.padding_size - start < 2:
            raise ValueError("RTX packet has no original sequence number")
        self.sequence_number = _UINT16.unpack_from(self.data, start)[0]
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.payload_start = start + 2
        self.body = self.data[start + 2 :]


def find_extension(data: bytes, start: int, end: int, profile: int, ext_id: int) -> bytes | None:
    """Find one header extension element (RFC 8285 one- or two-byte form) in ``data[start:end]``.

    Raises ValueError when an element runs past the end of the block.
    """
    pos = start
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            byte = data[pos]
            if byte == 0:
                pos += 1
                continue
            x_id = byte >> 4
            if x_id == 15:  # RFC 8285: id 15 stops processing
                return None
            x_len = (byte & 0x0F) + 1
            pos += 1
            if pos + x_len > end:
                raise ValueError("RTP one-byte header extension value is truncated")
            if x_id == ext_id:
                return data[pos : pos + x_len]
            pos += x_len
    elif profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
        while pos < end:
            x_id = data[pos]
            if x_id == 0:
                pos += 1
                continue
            if pos + 2 > end:
                raise ValueError("RTP two-byte header extension is truncated")
            x_len = data[pos + 1]
            pos += 2
            if pos + x_len > end:
                raise ValueError("RTP two-byte header extension value is truncated")
            if x_id == ext_id:
                return data[pos : pos + x_len]
            pos += x_len
    return None


def build_rtp(
    *,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: int = 0,
    extensions: list[tuple[int, bytes]] | None = None,
) -> bytes:
    """Serialize a plain RTP packet (used by tests and tools, not the forwarding path)."""
    if not 0 <= payload_type <= 127:
        raise ValueError(f"RTP payload type {payload_type} is out of range")
    if not extensions:
        return HEADER.pack(0x80, (marker << 7) | payload_type, sequence_number, timestamp, ssrc) + payload
    block = b""
    for x_id, value in extensions:
        if not 1 <= x_id <= 14 or not 1 <= len(value) <= 16:
            raise ValueError(f"header extension {x_id} does not fit the one-byte form")
        block += BYTES[(x_id << 4) | (len(value) - 1)] + value
    block += PADDING[-len(block) & 3]
    return (
        HEADER_WITH_EXTENSION.pack(
            0x90,
            (marker << 7) | payload_type,
            sequence_number,
            timestamp,
            ssrc,
            ONE_BYTE_PROFILE,
            len(block) // 4,
        )
        + block
        + payload
    )
