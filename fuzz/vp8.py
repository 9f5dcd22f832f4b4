"""VP8 payload descriptor target (RFC 7741), with the H.264 keyframe test (RFC 6184) on the same bytes.

media/keyframe.py reads a publisher's RTP payload to decide when a slot may start or switch (a keyframe).
It documents no error: any payload gets a bool. The VP8 answer is compared with an independent
reading of RFC 7741 section 4.2 / RFC 6386 section 9.1 written here from the RFC text.
media/vp8_descriptor.py (slots) reads PictureID / TL0PICIDX (ValueError when truncated) and rewrites
them in place: see _check_rewrite.
"""

from __future__ import annotations

from fuzz import check
from media.keyframe import h264_is_keyframe, is_keyframe, vp8_is_keyframe
from media.vp8_descriptor import NONE, Vp8Descriptor, rewrite_vp8



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


def _check_rewrite(data: bytes) -> None:
    """media/vp8_descriptor.py (slots): parse (ValueError for a truncated descriptor), then the rewrite
    must change PictureID / TL0PICIDX only, in place, and read back as written."""
    try:
        desc = Vp8Descriptor.parse(data)
    except ValueError:
        return
    if desc is None:
        return
    check(desc.picture_id_bytes in (0, 1, 2) and (desc.picture_id_bytes == 0) == (desc.picture_id == NONE),
          "PictureID width and value disagree")
    check(desc.picture_id == NONE or 0 <= desc.picture_id < (128 if desc.picture_id_bytes == 1 else 32768),
          "PictureID out of its width")
    check(desc.tl0picidx == NONE or 0 <= desc.tl0picidx <= 255, "TL0PICIDX out of range")
    for picture_id, tl0 in ((0, 0), (0x7FFF, 255), (12345, 77), (-1, -1), (1 << 20, 1 << 9)):
        out = rewrite_vp8(data, desc, picture_id, tl0)
        check(len(out) == len(data), "the rewrite changed the payload's length")
        again = Vp8Descriptor.parse(out)
        check(again is not None, "the rewritten descriptor lost its fields")
        assert again is not None
        width = 0x7F if desc.picture_id_bytes == 1 else 0x7FFF
        check(desc.picture_id == NONE or again.picture_id == picture_id & width, "PictureID does not read back")
        check(desc.tl0picidx == NONE or again.tl0picidx == tl0 & 0xFF, "TL0PICIDX does not read back")
        check((again.picture_id_bytes, again.picture_id_pos, again.tl0_pos, again.tid, again.start_of_frame)
              == (desc.picture_id_bytes, desc.picture_id_pos, desc.tl0_pos, desc.tid, desc.start_of_frame),
              "the rewrite moved the descriptor's fields")
        touched = set(range(desc.picture_id_pos, desc.picture_id_pos + desc.picture_id_bytes))
        if desc.tl0picidx != NONE:
            touched.add(desc.tl0_pos)
        check(all(out[i] == data[i] for i in range(len(data)) if i not in touched),
              "the rewrite touched bytes outside PictureID / TL0PICIDX")
        check(vp8_is_keyframe(out) == vp8_is_keyframe(data), "the rewrite changed the keyframe answer")


def one_input(data: bytes) -> None:
    answer = vp8_is_keyframe(data)
    check(isinstance(answer, bool), "vp8_is_keyframe did not answer a bool")
    expected = reference_vp8_keyframe(data)
    check(answer == expected, f"vp8_is_keyframe({data[:12].hex()}) is {answer}, RFC 7741 says {expected}")
    check(is_keyframe("vp8", data) == answer, "is_keyframe('vp8') disagrees with vp8_is_keyframe")
    check(isinstance(h264_is_keyframe(data), bool), "h264_is_keyframe did not answer a bool")
    check(is_keyframe("opus", data) is True, "audio packets must always count as keyframes")
    _check_rewrite(data)
