"""Keyframe detection from RTP payloads (VP8: RFC 7741, H.264: RFC 6184); no decoding."""

from __future__ import annotations


def vp8_is_keyframe(payload: bytes) -> bool:
    """True for the first packet of a VP8 keyframe."""
    if not payload:
        return False
    b0 = payload[0]
    if not b0 & 0x10 or b0 & 0x07:  # S bit set and partition index 0
        return False
    pos = 1
    if b0 & 0x80:  # X: extended control bits
        if len(payload) < 2:
            return False
        x = payload[1]
        pos = 2
        if x & 0x80:  # I: picture id
            if len(payload) <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T or K: TID/KEYIDX byte
            pos += 1
    if len(payload) <= pos:
        return False
    return not payload[pos] & 0x01  # P bit 0: keyframe


def h264_is_keyframe(payload: bytes) -> bool:
    """True when the packet carries an IDR slice or SPS (single NAL, STAP-A or FU-A start)."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (5, 7):
        return True
    if nal_type == 24:  # STAP-A
        pos = 1
        while pos + 2 < len(payload):
            size = (payload[pos] << 8) | payload[pos + 1]
            if payload[pos + 2] & 0x1F in (5, 7):
                return True
            pos += 2 + size
        return False
    if nal_type == 28 and len(payload) > 1:  # FU-A
        return bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
    return False


def is_keyframe(codec_name: str, payload: bytes) -> bool:
    """Keyframe test for a codec by name; audio and unknown codecs are always 'keyframes'."""
    name = codec_name.upper()
    if name == "VP8":
        return vp8_is_keyframe(payload)
    if name == "H264":
        return h264_is_keyframe(payload)
    return True
