"""Subscribers: receive-side accounting shared by every subscribing site of a process. A hook on the
ICE socket reads the clear RTP header (loss from sequence gaps) and, one packet in
``DELAY_SAMPLE_EVERY``, SRTP-unprotects it to read the send-time trailer (added delay)."""

from __future__ import annotations

import socket
import time
from typing import Any

from aiortc import sdp as aiortc_sdp

from bench.loadgen.rtp import TRAILER_MAGIC, U32, U64

#: Delay histogram: 50 us bins up to 5 s.
BIN_NS = 50_000
BINS = 100_000
#: Read the send-time trailer of one packet in this many (a power of two) per stream: SRTP
#: decryption is most of a lean receiver's cost.
DELAY_SAMPLE_EVERY = 2


def hook_datagrams(dtls: Any, on_srtp: Any, opened: list[socket.socket]) -> None:
    """Bench-only seam: RTP/RTCP datagrams of this DTLS transport's ICE sockets go to ``on_srtp``
    (still SRTP-protected), everything else (STUN, DTLS) to aioice as before. Each wake-up drains
    the socket (asyncio reads one datagram per readiness event), which keeps the receiving side
    of the load generator cheap."""
    connection = dtls.transport._connection
    for protocol in connection._protocols:
        original = protocol.datagram_received
        sock = socket.fromfd(protocol.transport.get_extra_info("socket").fileno(), socket.AF_INET,
                             socket.SOCK_DGRAM)
        sock.setblocking(False)
        opened.append(sock)

        def datagram_received(data: bytes, addr: Any, _original: Any = original, _sock: Any = sock) -> None:
            for _ in range(256):
                if 127 < data[0] < 192:
                    on_srtp(data)
                else:
                    _original(data, addr)
                try:
                    data, addr = _sock.recvfrom(4096)
                except OSError:  # BlockingIOError: drained
                    return

        protocol.datagram_received = datagram_received


def rx_session(dtls: Any) -> Any:
    """Bench-only seam: the SRTP session aiortc set up for receiving on this DTLS transport."""
    return dtls._rx_srtp


def vp8_keyframe_start(plain: bytes) -> bool:
    """Whether this clear RTP packet starts a VP8 keyframe (RFC 7741: S=1, PID=0, P=0)."""
    offset = 12 + 4 * (plain[0] & 0x0F)
    if plain[0] & 0x10:
        offset += 4 + 4 * ((plain[offset + 2] << 8) | plain[offset + 3])
    b0 = plain[offset]
    offset += 1
    if not b0 & 0x10 or b0 & 0x07:
        return False
    if b0 & 0x80:
        b1 = plain[offset]
        offset += 1
        if b1 & 0x80:
            offset += 2 if plain[offset] & 0x80 else 1
        if b1 & 0x40:
            offset += 1
        if b1 & 0x30:
            offset += 1
    return not plain[offset] & 0x01


# -- subscribing -------------------------------------------------------------------------------


class InStream:
    __slots__ = ("ssrc", "kind", "publisher", "count", "base", "max", "last_ts", "delay_n")

    def __init__(self, ssrc: int, kind: str, publisher: str) -> None:
        self.ssrc = ssrc
        self.kind = kind
        self.publisher = publisher
        self.count = 0
        self.base = -1
        self.max = 0
        self.last_ts = -1
        self.delay_n = 0


class Receiver:
    """All subscribing sites of this process share one accounting state."""

    def __init__(self, measure_delay: str) -> None:
        self.measure_delay = measure_delay  # "trailer", "frames" or "none"
        self.streams: dict[int, InStream] = {}
        self.measuring = False
        self.unknown = 0
        self.rtcp = 0
        self.trailer_missing = 0
        self.unprotect_errors = 0
        self.hist = {"audio": [0] * BINS, "video": [0] * BINS}
        self.frames: list[tuple[str, str, int, int]] = []  # (subscriber, publisher, ts, arrival ns)
        self.subscriber_of: dict[int, str] = {}
        #: Join figures, recorded whether or not a window is being measured (monotonic ns):
        #: per subscribing site, when each SSRC delivered its first packet, and when the first
        #: remote VP8 keyframe started (the first remote frame the site could decode).
        self.first_seen: dict[str, dict[int, int]] = {}
        self.first_keyframe: dict[str, int] = {}
        self.keyframe_check_errors: dict[str, str] = {}  # the last failure to read a packet, per site

    def reset(self) -> None:
        for stream in self.streams.values():
            stream.count = 0
            stream.base = -1
            stream.last_ts = -1
        for h in self.hist.values():
            h[:] = [0] * BINS
        self.frames.clear()
        self.unknown = self.rtcp = self.trailer_missing = self.unprotect_errors = 0

    def handler(self, site: str, session_of: Any) -> Any:
        streams = self.streams
        unpack_u32 = U32.unpack_from
        unpack_u64 = U64.unpack_from
        monotonic_ns = time.monotonic_ns
        hist = self.hist
        frames = self.frames
        frames_mode = self.measure_delay == "frames"
        trailer_mode = self.measure_delay == "trailer"
        sample_mask = DELAY_SAMPLE_EVERY - 1
        seen = self.first_seen.setdefault(site, {})
        first_keyframe = self.first_keyframe

        def on_srtp(data: bytes) -> None:
            now = monotonic_ns()
            if 191 < data[1] < 224:
                self.rtcp += 1
                return
            ssrc = unpack_u32(data, 8)[0]
            stream = streams.get(ssrc)
            if stream is None:
                if self.measuring:
                    self.unknown += 1
                return
            if ssrc not in seen:
                seen[ssrc] = now
            checked = False
            if site not in first_keyframe and stream.kind == "video":
                checked = True
                # Until the site's first remote keyframe: unprotect to read the VP8 descriptor (SRTP
                # refuses a replay, so this packet is not unprotected again below).
                try:
                    if vp8_keyframe_start(session_of().unprotect(data)):
                        first_keyframe[site] = now
                except Exception as exc:  # noqa: BLE001 - not yet keyed, or not VP8
                    self.keyframe_check_errors[site] = f"{type(exc).__name__}: {exc}"
            if not self.measuring:
                return
            seq = (data[2] << 8) | data[3]
            if stream.base < 0:
                stream.base = stream.max = seq
            else:
                diff = (seq - stream.max) & 0xFFFF
                if diff < 0x8000:
                    stream.max += diff
            stream.count += 1
            if trailer_mode and not checked and not (stream.count & sample_mask):
                try:
                    plain = session_of().unprotect(data)
                except Exception:  # noqa: BLE001 - counted
                    self.unprotect_errors += 1
                    return
                if plain[-12:-8] != TRAILER_MAGIC:
                    self.trailer_missing += 1
                    return
                delay = (now - unpack_u64(plain, len(plain) - 8)[0]) // BIN_NS
                hist[stream.kind][delay if delay < BINS else BINS - 1] += 1
            elif frames_mode and stream.kind == "video":
                ts = unpack_u32(data, 4)[0]
                if ts != stream.last_ts:
                    stream.last_ts = ts
                    frames.append((site, stream.publisher, ts, now))

        return on_srtp

    def learn(self, site: str, sdp: str, slots: list[dict[str, Any]]) -> None:
        """Map the SSRCs of the receiving connection's offer to its slots (by mid): the kind, and
        the publisher when the slot's carries one publisher for good (the relay baseline's
        ``participant_id``); a slot of Cabinet's changes hands, so it is named after itself."""
        by_mid = {str(c["mid"]): c for c in slots if c.get("mid") is not None}
        for media in aiortc_sdp.SessionDescription.parse(sdp).media:
            info = by_mid.get(str(media.rtp.muxId))
            if info is None:
                continue
            ssrcs = [s.ssrc for s in media.ssrc]
            for group in media.ssrc_group:
                if group.semantic == "FID":
                    ssrcs = [int(group.items[0])]
            for ssrc in ssrcs[:1]:
                if ssrc not in self.streams:
                    owner = info.get("participant_id") if "slot_id" not in info or info.get("stream_id") == info.get(
                        "participant_id") else None
                    self.streams[ssrc] = InStream(ssrc, info["kind"], str(owner or f"{site}/{info.get('slot_id')}"))
