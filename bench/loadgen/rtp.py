"""RTP details shared by the load generator's publishers and subscribers: the packet layout, the
send-time trailer, header extensions and the video timestamp signature."""

from __future__ import annotations

import random
import struct

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
HEADER = struct.Struct("!BBHII")
EXT_HEADER = struct.Struct("!HH")
U64 = struct.Struct("!Q")
U32 = struct.Struct("!I")
TRAILER_MAGIC = b"CBT1"


def video_ts_jitter(k: int) -> int:
    """RTP timestamp of video frame ``k`` is ``6000 * k + 300 * video_ts_jitter(k)`` (15 fps, at most
    +-6.7 ms off the frame clock): the steps between frames carry a pseudo-random signature, so a
    receiver's frames can be matched to sent frames across a re-encoding server whose output
    timestamps have an unknown offset (the MediaRelay baseline)."""
    return _JITTER[k % len(_JITTER)]


_JITTER = (lambda rng: [rng.randrange(-2, 3) for _ in range(4096)])(random.Random(1209))


# -- header extensions -------------------------------------------------------------------------


def ext_block(elements: list[tuple[int, bytes]]) -> bytes:
    block = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in elements if i)
    if not block:
        return b""
    block += b"\x00" * (-len(block) & 3)
    return EXT_HEADER.pack(0xBEDE, len(block) // 4) + block


def abs_send_time(now_ns: int) -> bytes:
    value = (now_ns * 262144 // 1_000_000_000) & 0xFFFFFF
    return value.to_bytes(3, "big")

