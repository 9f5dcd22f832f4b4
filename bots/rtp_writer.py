"""RTP for the bot's outgoing streams: header serialization, VP8 packetization, RTX.

Everything constant per stream (SSRC, payload type, the MID element, extension ids) is computed
once; per packet the writer does one ``struct.pack`` and one ``bytes.join``.
"""

from __future__ import annotations

import math
import struct

from media.rtp_packet import HEADER, HEADER_WITH_EXTENSION, ONE_BYTE_PROFILE, PADDING, abs_send_time_now

from .stamp import STAMP_SIZE

#: Payload bytes per RTP packet (leaves room for headers, SRTP and a tunnel under a 1500 MTU).
MAX_PAYLOAD = 1150
#: RFC 7741 descriptor sizes: X, I, 15-bit PictureID; with temporal layers also TL0PICIDX and
#: the TID/Y/KEYIDX byte.
VP8_DESCRIPTOR_SIZE = 4
VP8_TEMPORAL_DESCRIPTOR_SIZE = 6
_OSN = struct.Struct("!H")


class RtpWriter:
    """Serializes one outgoing stream; ``level_id`` / ``abs_id`` are 0 when not negotiated."""

    __slots__ = ("ssrc", "payload_type", "_mid_elem", "_level_id", "_abs_hdr", "sequence_number")

    def __init__(
        self,
        *,
        ssrc: int,
        payload_type: int,
        sequence_number: int,
        mid_id: int = 0,
        mid: str | None = None,
        level_id: int = 0,
        abs_id: int = 0,
    ) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.sequence_number = sequence_number & 0xFFFF
        mid_bytes = (mid or "").encode()
        self._mid_elem = bytes(((mid_id << 4) | (len(mid_bytes) - 1),)) + mid_bytes if mid_id and mid_bytes else b""
        self._level_id = level_id << 4 if level_id else 0
        self._abs_hdr = bytes(((abs_id << 4) | 2,)) if abs_id else b""
        if max(mid_id, level_id, abs_id) > 14:
            raise ValueError("header extension ids above 14 need the two-byte form")

    def next_sequence(self) -> int:
        seq = self.sequence_number
        self.sequence_number = (seq + 1) & 0xFFFF
        return seq

    def packet(
        self,
        payload: bytes,
        timestamp: int,
        *,
        marker: int = 0,
        level: int = -1,
        abs_send_time: bytes = b"",
        sequence_number: int = -1,
    ) -> bytes:
        """Plain RTP bytes; takes the next sequence number unless one is given.

        ``level``: the RFC 6464 byte (V bit | -dBov), -1 for none.
        """
        seq = self.next_sequence() if sequence_number < 0 else sequence_number
        b1 = (marker << 7) | self.payload_type
        ext = self._mid_elem
        if level >= 0 and self._level_id:
            ext += bytes((self._level_id, level))
        if abs_send_time and self._abs_hdr:
            ext += self._abs_hdr + abs_send_time
        if not ext:
            return HEADER.pack(0x80, b1, seq, timestamp, self.ssrc) + payload
        pad = -len(ext) & 3
        head = HEADER_WITH_EXTENSION.pack(0x90, b1, seq, timestamp, self.ssrc, ONE_BYTE_PROFILE, (len(ext) + pad) >> 2)
        return b"".join((head, ext, PADDING[pad], payload))


def split_vp8_frame(frame: bytes, max_payload: int = MAX_PAYLOAD, descriptor_size: int = VP8_DESCRIPTOR_SIZE) -> list[bytes]:
    """Split a VP8 frame into packet pieces (without the ``descriptor_size``-byte payload
    descriptor) such that the last piece still has room for the stamp."""
    room = max_payload - descriptor_size
    if room <= STAMP_SIZE:
        raise ValueError(f"max_payload {max_payload} leaves no room for a {descriptor_size}-byte descriptor and the stamp")
    total = len(frame) + STAMP_SIZE
    count = max(1, math.ceil(total / room))
    size = math.ceil(total / count)
    pieces = [frame[i * size : (i + 1) * size] for i in range(count - 1)]
    pieces.append(frame[(count - 1) * size :])
    return pieces


def vp8_descriptors(picture_id: int, count: int, *, tl0picidx: int | None = None, tid: int = 0,
                    layer_sync: bool = False) -> list[bytes]:
    """RFC 7741 payload descriptors for the ``count`` packets of one frame (S on the first).

    Without ``tl0picidx``: X, I and a 15-bit PictureID (4 bytes, a single-layer stream). With it
    (temporal layers, §4.2): X with I, L and T; the 15-bit PictureID; TL0PICIDX; then TID (2
    bits), Y (``layer_sync``) and KEYIDX 0 (K clear) in one byte (6 bytes, libwebrtc's layout, so
    TL0PICIDX sits at offset 4).
    """
    if count < 1:
        raise ValueError(f"a frame needs at least one packet, not {count}")
    pid = picture_id & 0x7FFF
    pid_bytes = bytes((0x80 | (pid >> 8), pid & 0xFF))
    if tl0picidx is None:
        tail = b"\x80" + pid_bytes
    else:
        if not 0 <= tl0picidx <= 0xFF:
            raise ValueError(f"TL0PICIDX must be 0..255, not {tl0picidx}")
        if not 0 <= tid <= 3:
            raise ValueError(f"TID must be 0..3, not {tid}")
        tail = b"\xe0" + pid_bytes + bytes((tl0picidx, (tid << 6) | (0x20 if layer_sync else 0)))
    first = b"\x90" + tail
    rest = b"\x80" + tail
    return [first] + [rest] * (count - 1)


def rtx_payload(original_sequence: int, payload: bytes) -> bytes:
    """RFC 4588 payload: original sequence number then the original payload."""
    return _OSN.pack(original_sequence) + payload


__all__ = ["MAX_PAYLOAD", "VP8_DESCRIPTOR_SIZE", "VP8_TEMPORAL_DESCRIPTOR_SIZE", "RtpWriter", "abs_send_time_now", "rtx_payload",
           "split_vp8_frame", "vp8_descriptors"]
