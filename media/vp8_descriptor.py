"""VP8 payload descriptor (RFC 7741 section 4.2): read and rewrite PictureID and TL0PICIDX.

A slot (:mod:`media.slot`) carries several publishers' VP8 streams one after the other under one
SSRC; the receiver (libwebrtc) uses PictureID to find missing frames and TL0PICIDX to follow
temporal-layer dependencies, so both must continue across a switch as if one encoder had produced
them. The fields are rewritten in the width the publisher used (7- or 15-bit PictureID); the rest
of the payload is never touched.
"""

from __future__ import annotations

from .rtp_packet import BYTES, RtpPacketView

#: The PictureID of a packet without one (I bit clear), and "no TL0PICIDX" (L bit clear).
NONE = -1


class Vp8Descriptor:
    """Where PictureID / TL0PICIDX sit in one packet's payload (``parse`` returns None when the
    descriptor carries neither)."""

    __slots__ = ("picture_id", "picture_id_bytes", "picture_id_pos", "tl0picidx", "tl0_pos", "start_of_frame", "tid")

    def __init__(self) -> None:
        self.picture_id = NONE
        self.picture_id_bytes = 0
        self.picture_id_pos = 0
        self.tl0picidx = NONE
        self.tl0_pos = 0
        self.start_of_frame = False
        self.tid = 0

    @classmethod
    def parse(cls, payload: bytes) -> Vp8Descriptor | None:
        """The descriptor of ``payload`` (no padding), or None when it has no extended fields.

        Raises ValueError when the descriptor is truncated.
        """
        if not payload:
            raise ValueError("VP8 payload is empty")
        b0 = payload[0]
        if not b0 & 0x80:  # X clear: no PictureID, TL0PICIDX, TID
            return None
        length = len(payload)
        if length < 2:
            raise ValueError("VP8 payload descriptor is truncated")
        x = payload[1]
        pos = 2
        desc = cls()
        desc.start_of_frame = bool(b0 & 0x10) and not b0 & 0x07
        if x & 0x80:  # I
            if length <= pos:
                raise ValueError("VP8 PictureID is truncated")
            if payload[pos] & 0x80:  # M: 15-bit
                if length <= pos + 1:
                    raise ValueError("VP8 15-bit PictureID is truncated")
                desc.picture_id = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                desc.picture_id_bytes = 2
            else:
                desc.picture_id = payload[pos]
                desc.picture_id_bytes = 1
            desc.picture_id_pos = pos
            pos += desc.picture_id_bytes
        if x & 0x40:  # L
            if length <= pos:
                raise ValueError("VP8 TL0PICIDX is truncated")
            desc.tl0picidx = payload[pos]
            desc.tl0_pos = pos
            pos += 1
        if x & 0x30:  # T or K
            if length <= pos:
                raise ValueError("VP8 TID/KEYIDX byte is truncated")
            desc.tid = payload[pos] >> 6 if x & 0x20 else 0
        if desc.picture_id_bytes == 0 and desc.tl0picidx == NONE:
            return None
        return desc


def rewrite_vp8(body: bytes, desc: Vp8Descriptor, picture_id: int, tl0picidx: int) -> bytes:
    """``body`` (payload and padding) with the descriptor's PictureID / TL0PICIDX replaced.

    ``picture_id`` is taken modulo the field's width (2^7 or 2^15); ``tl0picidx`` modulo 256.
    Fields the descriptor does not carry are left alone.
    """
    parts: list[bytes] = []
    pos = 0
    if desc.picture_id_bytes == 2:
        start = desc.picture_id_pos
        parts.append(body[:start])
        parts.append(BYTES[0x80 | ((picture_id >> 8) & 0x7F)] + BYTES[picture_id & 0xFF])
        pos = start + 2
    elif desc.picture_id_bytes == 1:
        start = desc.picture_id_pos
        parts.append(body[:start])
        parts.append(BYTES[picture_id & 0x7F])
        pos = start + 1
    if desc.tl0picidx != NONE:
        parts.append(body[pos : desc.tl0_pos])
        parts.append(BYTES[tl0picidx & 0xFF])
        pos = desc.tl0_pos + 1
    parts.append(body[pos:])
    return b"".join(parts)


def shift_picture_ids(packet: RtpPacketView, out: RtpPacketView, pid_offset: int,
                      tl0_offset: int) -> tuple[RtpPacketView, int, int]:
    """``packet`` with its PictureID / TL0PICIDX moved by the offsets, written into ``out`` (a view
    reused per packet; ``packet`` itself when nothing changes); and the output PictureID /
    TL0PICIDX (NONE when absent). Raises ValueError for a truncated descriptor."""
    desc = Vp8Descriptor.parse(packet.body)
    if desc is None:
        return packet, NONE, NONE
    pid = (desc.picture_id + pid_offset) & 0x7FFF if desc.picture_id_bytes else NONE
    tl0 = (desc.tl0picidx + tl0_offset) & 0xFF if desc.tl0picidx != NONE else NONE
    if not (pid_offset or tl0_offset):
        return packet, pid, tl0
    out.marker = packet.marker
    out.padding_size = packet.padding_size
    out.audio_level = packet.audio_level
    out.body = rewrite_vp8(packet.body, desc, pid, tl0)
    return out, pid, tl0


def read_temporal(packet: RtpPacketView) -> None:
    """Set ``packet.tid`` and ``packet.layer_sync`` from the descriptor's TID/Y byte (RFC 7741
    §4.2, T bit); a packet without one (no temporal layers, or truncated) stays layer 0."""
    body = packet.body
    if len(body) < 3 or not body[0] & 0x80:
        return
    x = body[1]
    if not x & 0x20:
        return
    pos = 2
    if x & 0x80:
        pos += 2 if body[2] & 0x80 else 1
    if x & 0x40:
        pos += 1
    if pos < len(body):
        t = body[pos]
        packet.tid = t >> 6
        packet.layer_sync = bool(t & 0x20)


def source_picture_id(body: bytes) -> int:
    """The PictureID of a VP8 payload (7- or 15-bit), NONE when absent or unreadable."""
    try:
        desc = Vp8Descriptor.parse(body)
    except ValueError:
        return NONE
    return desc.picture_id if desc is not None and desc.picture_id_bytes else NONE


def set_picture_ids(packet: RtpPacketView, out: RtpPacketView, picture_id: int, tl0_offset: int) -> RtpPacketView:
    """``packet`` with its PictureID set to ``picture_id`` (when it has one; NONE keeps it) and its
    TL0PICIDX moved by ``tl0_offset``, written into ``out`` (``packet`` itself when nothing changes).
    A retransmission is rewritten exactly as the packet was first sent. Raises ValueError for a
    truncated descriptor."""
    desc = Vp8Descriptor.parse(packet.body)
    if desc is None:
        return packet
    pid = picture_id if picture_id != NONE and desc.picture_id_bytes else desc.picture_id
    tl0 = (desc.tl0picidx + tl0_offset) & 0xFF if desc.tl0picidx != NONE else NONE
    if pid == desc.picture_id and tl0 == desc.tl0picidx:
        return packet
    out.marker = packet.marker
    out.padding_size = packet.padding_size
    out.audio_level = packet.audio_level
    out.body = rewrite_vp8(packet.body, desc, pid, tl0)
    return out
