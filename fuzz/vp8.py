"""VP8 payload descriptor target (RFC 7741), with the H.264 keyframe test (RFC 6184) on the same bytes.

media/keyframe.py reads a publisher's RTP payload to decide when a consumer may start (a keyframe).
It documents no error: any payload gets a bool. The VP8 answer is compared with an independent
reading of RFC 7741 section 4.2 / RFC 6386 section 9.1 written here from the RFC text.
"""

from __future__ import annotations

from fuzz import check
from media.keyframe import h264_is_keyframe, is_keyframe, vp8_is_keyframe



def reference_vp8_keyframe(payload: bytes) -> bool:
    """RFC 7741: the first packet of a keyframe has S=1, PID=0, and P=0 in the VP8 payload header."""
    if len(payload) < 1:
        return False
    x_bit, s_bit, pid = payload[0] >> 7, (payload[0] >> 4) & 1, payload[0] & 0x07
    if not s_bit or pid != 0:
        return False
    size = 1
    if x_bit:
        if len(payload) < 2:
            return False
        i_bit, l_bit, t_bit, k_bit = (payload[1] >> 7) & 1, (payload[1] >> 6) & 1, (payload[1] >> 5) & 1, (payload[1] >> 4) & 1
        size = 2
        if i_bit:
            if len(payload) < 3:
                return False
            size += 2 if payload[2] & 0x80 else 1  # M bit: 15-bit picture id
        size += l_bit  # TL0PICIDX
        size += 1 if (t_bit or k_bit) else 0  # TID|Y|KEYIDX
    if len(payload) < size + 1:
        return False
    return payload[size] & 0x01 == 0  # P (inverse key frame flag)


def one_input(data: bytes) -> None:
    answer = vp8_is_keyframe(data)
    check(isinstance(answer, bool), "vp8_is_keyframe did not answer a bool")
    expected = reference_vp8_keyframe(data)
    check(answer == expected, f"vp8_is_keyframe({data[:12].hex()}) is {answer}, RFC 7741 says {expected}")
    check(is_keyframe("vp8", data) == answer, "is_keyframe('vp8') disagrees with vp8_is_keyframe")
    check(isinstance(h264_is_keyframe(data), bool), "h264_is_keyframe did not answer a bool")
    check(is_keyframe("opus", data) is True, "audio packets must always count as keyframes")
