"""The largest payloads the signaling server accepts, event by event, and the smallest ones over the limit.

Used by tests/test_loop_budget.py and bench/loop_budget.py. The limits come from the product itself
(signaling/validation.py, signaling/protocol.py, signaling/votes.py, signaling/floor_protocol.py and the
``[signaling]`` configuration), so a changed limit changes the payloads.

SDPs are shaped like Chromium's: a publisher's offer (microphone, camera, screen and its sound: the four
media sections signaling/validation.py allows) with Chromium's codec list, then grown to the limits with
lines of one kind: candidates, SSRC attributes, codec feedback and parameters, header extensions, or
attributes aiortc ignores. An adversary picks the kind that costs the server most, so each kind is a case.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from signaling.config import SignalingConfig
from signaling.validation import MAX_PUBLISH_MEDIA, MAX_SDP_LINES

try:
    from signaling.validation import MAX_CODEC_PAIRS, MAX_SSRC_LINES
except ImportError:  # before the caps of issue 9: only the line and byte limits
    MAX_CODEC_PAIRS = MAX_SSRC_LINES = 10**9

MAX_MESSAGE_BYTES = SignalingConfig().max_message_bytes

#: The kinds of lines an SDP is grown with (see _pad_line).
PAD_KINDS = ("candidates", "ssrc", "codecs", "rtpmap", "extmap", "ignored")


def _fingerprint() -> str:
    return ":".join(f"{b:02X}" for b in secrets.token_bytes(32))


_AUDIO_CODECS = """\
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000"""
_AUDIO_PTS = "111 63 9 0 8 13 110 126"

_VIDEO_CODECS = """\
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:98 VP9/90000
a=rtcp-fb:98 goog-remb
a=rtcp-fb:98 transport-cc
a=rtcp-fb:98 ccm fir
a=rtcp-fb:98 nack
a=rtcp-fb:98 nack pli
a=fmtp:98 profile-id=0
a=rtpmap:99 rtx/90000
a=fmtp:99 apt=98
a=rtpmap:102 H264/90000
a=rtcp-fb:102 goog-remb
a=rtcp-fb:102 transport-cc
a=rtcp-fb:102 ccm fir
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:104 H264/90000
a=rtcp-fb:104 goog-remb
a=rtcp-fb:104 transport-cc
a=rtcp-fb:104 ccm fir
a=rtcp-fb:104 nack
a=rtcp-fb:104 nack pli
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:105 rtx/90000
a=fmtp:105 apt=104
a=rtpmap:45 AV1/90000
a=rtcp-fb:45 goog-remb
a=rtcp-fb:45 transport-cc
a=rtcp-fb:45 ccm fir
a=rtcp-fb:45 nack
a=rtcp-fb:45 nack pli
a=rtpmap:46 rtx/90000
a=fmtp:46 apt=45
a=rtpmap:114 red/90000
a=rtpmap:115 rtx/90000
a=fmtp:115 apt=114
a=rtpmap:116 ulpfec/90000"""
_VIDEO_PTS = "96 97 98 99 102 103 104 105 45 46 114 115 116"

_AUDIO_EXT = """\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"""
_VIDEO_EXT = """\
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"""


def _section(kind: str, mid: int, ufrag: str, pwd: str, fingerprint: str, stream: str, port: int) -> list[str]:
    ssrc, rtx = 1000 + 2 * mid, 1001 + 2 * mid
    track = f"t{mid}-{secrets.token_hex(8)}"
    lines = [f"m={kind} {port} UDP/TLS/RTP/SAVPF {_AUDIO_PTS if kind == 'audio' else _VIDEO_PTS}",
             "c=IN IP4 127.0.0.1",
             "a=rtcp:9 IN IP4 0.0.0.0",
             f"a=candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host generation 0 network-id 1",
             f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}", "a=ice-options:trickle",
             f"a=fingerprint:sha-256 {fingerprint}", "a=setup:actpass", f"a=mid:{mid}"]
    lines += (_AUDIO_EXT if kind == "audio" else _VIDEO_EXT).splitlines()
    lines += ["a=sendonly", f"a=msid:{stream} {track}", "a=rtcp-mux"]
    if kind == "video":
        lines += ["a=rtcp-rsize"]
    lines += (_AUDIO_CODECS if kind == "audio" else _VIDEO_CODECS).splitlines()
    if kind == "video":
        lines += [f"a=ssrc-group:FID {ssrc} {rtx}"]
    for value in ((ssrc, rtx) if kind == "video" else (ssrc,)):
        lines += [f"a=ssrc:{value} cname:{stream[:16]}", f"a=ssrc:{value} msid:{stream} {track}"]
    return lines


def chromium_offer(kinds: tuple[str, ...] = ("audio", "video", "audio", "video"), port: int = 50000) -> list[str]:
    """A Chromium-like publisher offer, as lines (no CRLF): one bundle, sendonly sections of ``kinds``."""
    ufrag, pwd, fingerprint = secrets.token_hex(2), secrets.token_hex(12), _fingerprint()
    stream = "{" + secrets.token_hex(16) + "}"
    lines = ["v=0", f"o=- {secrets.randbelow(2**62)} 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
             "a=group:BUNDLE " + " ".join(str(i) for i in range(len(kinds))), "a=extmap-allow-mixed",
             f"a=msid-semantic: WMS {stream}"]
    for mid, kind in enumerate(kinds):
        lines += _section(kind, mid, ufrag, pwd, fingerprint, stream, port)
    return lines


def _pad_line(kind: str, n: int, pt: str, k: int) -> str:
    """Line ``n`` of the padding (``k``: of this section)."""
    if kind == "candidates":
        # Every candidate on loopback: the server's ICE checks them, and tests talk only to loopback.
        port = 20000 + n % 40000
        return f"a=candidate:{n + 2} 1 udp {2122260223 - n} 127.0.0.1 {port} typ host generation 0 network-id 1"
    if kind == "ssrc":
        return f"a=ssrc:{3_000_000 + n} cname:x{n:06d}"  # each line a new SSRC: the costliest
    if kind == "codecs":
        return [f"a=rtcp-fb:{pt} nack", f"a=rtcp-fb:{pt} ccm fir", f"a=fmtp:{pt} x-pad={n}"][k % 3]
    if kind == "rtpmap":  # codecs times feedback lines: aiortc matches every a=rtcp-fb against every codec
        return f"a=rtpmap:{pt} x{n:06d}/90000" if k % 2 == 0 else "a=rtcp-fb:* nack"
    if kind == "extmap":
        return f"a=extmap:{1 + n % 14} urn:x-pad:ext:{n:06d}"
    if kind == "ignored":
        return f"a=x-pad:{n:06d}-" + "p" * 40
    raise ValueError(kind)


def _counts(line: str) -> tuple[int, int, int]:
    """(a=rtpmap, a=rtcp-fb or a=fmtp, a=ssrc) lines: what signaling/validation.py caps per section."""
    return (line.startswith("a=rtpmap:"), line.startswith(("a=rtcp-fb:", "a=fmtp:")), line.startswith("a=ssrc:"))


def grow(lines: list[str], kind: str, *, max_lines: int, max_bytes: int, over: bool = False) -> str:
    """Grow ``lines`` with as many lines of ``kind`` as the validator's caps allow (MAX_SSRC_LINES a=ssrc
    lines per section, MAX_CODEC_PAIRS a=rtpmap x (a=rtcp-fb + a=fmtp) pairs), the sections in turn, then
    with ignored lines, until the SDP has ``max_lines`` lines or would exceed ``max_bytes``. ``over``: just
    past those caps (one a=ssrc line too many, a few pairs too many)."""
    max_ssrc, max_pairs = (MAX_SSRC_LINES + 1, MAX_CODEC_PAIRS + 64) if over else (MAX_SSRC_LINES, MAX_CODEC_PAIRS)
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    head = lines[:starts[0]]
    sections = [list(lines[a:b]) for a, b in zip(starts, starts[1:] + [len(lines)])]
    stats = [[sum(c) for c in zip(*map(_counts, section))] for section in sections]
    pts = [section[0].split(" ")[3] for section in sections]  # each section's first payload type
    added = [0] * len(sections)
    state = {"size": sum(len(line) + 2 for line in lines), "count": len(lines), "n": 0}

    def add(i: int, line: str) -> bool:
        if state["count"] >= max_lines or state["size"] + len(line) + 2 > max_bytes:
            return False
        r, f, ssrc = (a + b for a, b in zip(stats[i], _counts(line)))
        pairs = sum(x[0] * x[1] for j, x in enumerate(stats) if j != i) + r * f
        if ssrc > max_ssrc or pairs > max_pairs:
            return False
        sections[i].append(line)
        stats[i] = [r, f, ssrc]
        state["size"] += len(line) + 2
        state["count"] += 1
        state["n"] += 1
        added[i] += 1
        return True

    growing = list(range(len(sections)))
    while growing:
        for i in list(growing):
            if not add(i, _pad_line(kind, state["n"], pts[i], added[i])):
                # a=rtpmap and a=rtcp-fb alternate: one more of the other kind may still fit
                if kind != "rtpmap" or not add(i, _pad_line(kind, state["n"], pts[i], added[i] + 1)):
                    growing.remove(i)
    last = len(sections) - 1
    while add(last, _pad_line("ignored", state["n"], pts[last], 0)):
        pass
    return "".join(line + "\r\n" for line in head + [line for section in sections for line in section])


# -- sizes on the wire -------------------------------------------------------------------------
# The transport (engine.io over aiohttp, max_http_buffer_size = signaling.max_message_bytes) limits the
# whole frame: "4" (engine.io message) "2" (socket.io event) <ack id> ["event",{payload}] (compact JSON,
# ASCII escapes). The schema's own limit (the payload alone, measured with spaces and UTF-8) is never the
# tighter one for a frame the transport delivers. Ack ids are counted as 4 digits: "at the limit" is
# within 4 bytes of the largest frame.
ACK_ID_DIGITS = 4


def wire_size(event: str, payload: Any) -> int:
    return 2 + ACK_ID_DIGITS + len(json.dumps([event, payload], separators=(",", ":")))


def wire_fit(event: str, base: dict[str, Any], field: str = "pad") -> dict[str, Any]:
    """``base`` padded with ``field`` to the largest frame the transport delivers."""
    out = {**base, field: ""}
    out[field] = "x" * (MAX_MESSAGE_BYTES - wire_size(event, out))
    return out


def wire_over(event: str, base: dict[str, Any], field: str = "pad") -> dict[str, Any]:
    """``base`` padded to one byte over the largest frame, whatever the ack id's length."""
    out = wire_fit(event, base, field)
    out[field] += "x" * (ACK_ID_DIGITS + 1)
    return out


def many_keys(event: str) -> dict[str, Any]:
    """As many (unknown) keys as fit in the largest frame."""
    room = MAX_MESSAGE_BYTES - wire_size(event, {}) + 1  # the first key has no comma before it
    out = {f"k{n:06d}": 0 for n in range(room // len(',"k000000":0'))}
    assert wire_size(event, out) <= MAX_MESSAGE_BYTES
    return out


def fit_sdp(lines: list[str], kind: str, extra: dict[str, Any] | None = None, *, event: str = "publish",
            max_lines: int = MAX_SDP_LINES, over: bool = False) -> str:
    """The largest SDP grown with ``kind`` lines (at most ``max_lines`` lines) whose frame
    ``event {"sdp": ..., **extra}`` the transport delivers."""
    def frame(max_bytes: int) -> tuple[str, int]:
        sdp = grow(lines, kind, max_lines=max_lines, max_bytes=max_bytes, over=over)
        return sdp, wire_size(event, {"sdp": sdp, **(extra or {})})

    low, high = 0, MAX_MESSAGE_BYTES  # raw SDP bytes; the frame is larger (CRLF is escaped as 4 bytes)
    best = grow(lines, kind, max_lines=0, max_bytes=MAX_MESSAGE_BYTES)
    while low <= high:
        middle = (low + high) // 2
        sdp, size = frame(middle)
        if size <= MAX_MESSAGE_BYTES:
            best, low = sdp, middle + 1
        else:
            high = middle - 1
    return best


def publish_offer(kind: str) -> str:
    """A publish offer at the limits: MAX_PUBLISH_MEDIA sections, grown with ``kind`` lines."""
    kinds = ("audio", "video", "audio", "video")[:MAX_PUBLISH_MEDIA]
    return fit_sdp(chromium_offer(kinds), kind)


def minimal_offer() -> str:
    """The same offer, not grown."""
    return "".join(line + "\r\n" for line in chromium_offer())


def grow_answer(answer: str, kind: str, revision: int) -> str:
    """A real answer grown to the limits with lines of ``kind`` (same media sections)."""
    lines = answer.replace("\r\n", "\n").rstrip("\n").split("\n")
    return fit_sdp(lines, kind, {"revision": revision}, event="answer")
