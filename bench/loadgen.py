"""Load generator process of the forwarding benchmark: lean publishers and subscribers.

Started by bench/forwarding.py, one or more per run. Reads one JSON line of configuration from
stdin, then commands, one per line: ``subscribe``, ``start`` (begin the measured window),
``stop`` (end it: print the result), ``quit``. Prints JSON lines: ``{"event": "published"}``,
``{"event": "subscribed"}``, ``{"event": "started"}``, ``{"event": "result", ...}``.

Kept cheaper than the server it measures:
  * publishers send pre-encoded, pre-packetized VP8/Opus (bench/media_loop.py) through aiortc
    transports whose senders are neutralized: per packet one header, one SRTP protect, one sendto;
  * subscribers never decode and bypass aiortc's receive chain: a hook on the ICE socket's
    ``datagram_received`` reads the (clear) RTP header for loss accounting and, when the payload
    carries a send timestamp trailer, SRTP-unprotects to read it (added delay). STUN and DTLS
    still go to aioice/aiortc, so consent freshness and DTLS keep working.

The private aioice/aiortc accesses of the generator (the datagram hook, the SRTP receive session)
are in :func:`hook_datagrams`; the others go through media/aiortc_seams.py.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import os
import random
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc import sdp as aiortc_sdp  # noqa: E402
from aiortc.rtcrtpsender import RTCRtpSender  # noqa: E402

from bench.media_loop import MediaLoop, MediaParams, load, vp8_payloads  # noqa: E402
from media import aiortc_seams as seams  # noqa: E402

log = logging.getLogger("loadgen")

LOOPBACK = ["127.0.0.1"]
URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
HEADER = struct.Struct("!BBHII")
EXT_HEADER = struct.Struct("!HH")
U64 = struct.Struct("!Q")
U32 = struct.Struct("!I")
TRAILER_MAGIC = b"CBT1"
#: Delay histogram: 50 us bins up to 5 s.
BIN_NS = 50_000
BINS = 100_000
#: Read the send-time trailer of one packet in this many (a power of two) per stream: SRTP
#: decryption is most of a lean receiver's cost.
DELAY_SAMPLE_EVERY = 2
SPEECH_LEVEL = 25  # -dBov of an active speaker
SILENCE_LEVEL = 127
DTX_INTERVAL_S = 0.4
PLI_MIN_INTERVAL_S = 1.0


def emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


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


# -- publishing --------------------------------------------------------------------------------


@dataclass
class OutStream:
    site: str
    kind: str
    egress: seams.SrtpEgress
    ssrc: int
    payload_type: int
    ext_ids: dict[str, int]
    mid: str
    trailer: bool
    seq: int = 0
    ts: int = 0
    k: int = 0  # frames / packets sent
    loop_index: int = 0
    picture_id: int = 0
    keyframe_wanted: bool = False
    last_keyframe_s: float = 0.0
    speaking: bool = False
    sent: int = 0
    send_failures: int = 0
    window_frames: list[tuple[int, int]] | None = None  # (RTP timestamp, send ns) while measuring

    def _send(self, payload: bytes, marker: int, extensions: list[tuple[int, bytes]]) -> None:
        ext = ext_block(extensions)
        first = 0x90 if ext else 0x80
        now = time.monotonic_ns()
        if self.trailer:
            payload = payload + TRAILER_MAGIC + U64.pack(now)
        data = HEADER.pack(first, (marker << 7) | self.payload_type, self.seq, self.ts, self.ssrc) + ext + payload
        self.seq = (self.seq + 1) & 0xFFFF
        if self.egress.send_rtp(data):
            self.sent += 1
        else:
            self.send_failures += 1

    def send_video(self, media: MediaLoop) -> float:
        """Send the next frame; returns the interval to the next one."""
        now_s = time.monotonic()
        if self.keyframe_wanted and now_s - self.last_keyframe_s >= PLI_MIN_INTERVAL_S:
            self.loop_index = 0
        self.keyframe_wanted = False
        if self.loop_index == 0:
            self.last_keyframe_s = now_s
        frame = media.frames[self.loop_index]
        self.loop_index = (self.loop_index + 1) % len(media.frames)
        self.k += 1
        self.ts = (self.ts + 6000 + 300 * (video_ts_jitter(self.k) - video_ts_jitter(self.k - 1))) & 0xFFFFFFFF
        if self.window_frames is not None:
            self.window_frames.append((self.ts, time.monotonic_ns()))
        payloads = vp8_payloads(frame, self.picture_id)
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        mid = (self.ext_ids.get("mid", 0), self.mid.encode())
        abs_id = self.ext_ids.get("abs", 0)
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            self._send(payload, int(i == last), [mid, (abs_id, abs_send_time(time.monotonic_ns()))])
        return 1 / media.params.fps

    def send_audio(self, media: MediaLoop) -> float:
        mid = (self.ext_ids.get("mid", 0), self.mid.encode())
        level_id = self.ext_ids.get("level", 0)
        if self.speaking:
            self.ts = (self.ts + 960) & 0xFFFFFFFF
            payload = media.speech[self.k % len(media.speech)]
            self.k += 1
            self._send(payload, 0, [mid, (level_id, bytes([0x80 | SPEECH_LEVEL]))])
            return 0.02
        self.ts = (self.ts + int(48000 * DTX_INTERVAL_S)) & 0xFFFFFFFF
        self._send(media.silence, 0, [mid, (level_id, bytes([SILENCE_LEVEL]))])
        return DTX_INTERVAL_S


def ext_ids_of(transceiver: Any) -> dict[str, int]:
    _, extensions = seams.negotiated_parameters(transceiver)
    names = {URI_MID: "mid", URI_AUDIO_LEVEL: "level", URI_ABS_SEND_TIME: "abs"}
    return {names[e.uri]: e.id for e in extensions if e.uri in names}


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

        def on_srtp(data: bytes) -> None:
            now = monotonic_ns()
            if 191 < data[1] < 224:
                self.rtcp += 1
                return
            if not self.measuring:
                return
            ssrc = unpack_u32(data, 8)[0]
            stream = streams.get(ssrc)
            if stream is None:
                self.unknown += 1
                return
            seq = (data[2] << 8) | data[3]
            if stream.base < 0:
                stream.base = stream.max = seq
            else:
                diff = (seq - stream.max) & 0xFFFF
                if diff < 0x8000:
                    stream.max += diff
            stream.count += 1
            if trailer_mode and not (stream.count & sample_mask):
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

    def learn(self, site: str, sdp: str, consumers: list[dict[str, Any]]) -> None:
        """Map the SSRCs of a server offer's m-lines to the publishing site and kind."""
        by_mid = {str(c["mid"]): c for c in consumers if c.get("mid") is not None}
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
                    self.streams[ssrc] = InStream(ssrc, info["kind"], str(info["participant_id"]))


# -- control channels --------------------------------------------------------------------------


class BenchControl:
    """The bench SFU server's HTTP control channel (bench/sfu_server.py)."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.url + path, json=body, timeout=aiohttp.ClientTimeout(total=1200)) as response:
            data = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {data}")
            return data  # type: ignore[no-any-return]

    async def join(self, site: Site) -> None:
        pass

    async def publish(self, site: Site, sdp: str) -> str:
        return (await self._post("/publish", {"participant": site.name, "sdp": sdp}))["sdp"]  # type: ignore[no-any-return]

    async def subscribe(self, site: Site) -> dict[str, Any]:
        return await self._post("/subscribe", {"participant": site.name, "last_n": site.last_n})

    async def answer(self, site: Site, sdp: str, revision: int) -> None:
        await self._post("/answer", {"participant": site.name, "sdp": sdp})

    async def close(self, site: Site) -> None:
        pass


class SioControl:
    """The real Cabinet signaling (socket.io), one connection per site."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def join(self, site: Site) -> None:
        import socketio

        site.sio = socketio.AsyncClient(reconnection=False)
        site.sio.on("offer", site.on_server_offer)
        await site.sio.connect(self.url, auth={"token": site.token}, transports=["websocket"], wait_timeout=30)
        reply = await site.sio.call("join", {"last_n": site.last_n} if site.last_n is not None else {}, timeout=60)
        if not reply.get("ok"):
            raise RuntimeError(f"join refused: {reply}")
        site.participant_id = reply["participant_id"]

    async def _call(self, site: Site, event: str, data: dict[str, Any]) -> dict[str, Any]:
        reply = await site.sio.call(event, data, timeout=1200)
        if not reply.get("ok"):
            raise RuntimeError(f"{event} refused: {reply}")
        return reply  # type: ignore[no-any-return]

    async def publish(self, site: Site, sdp: str) -> str:
        return (await self._call(site, "publish", {"sdp": sdp}))["sdp"]  # type: ignore[no-any-return]

    async def subscribe(self, site: Site) -> dict[str, Any]:
        return await self._call(site, "subscribe", {})

    async def answer(self, site: Site, sdp: str, revision: int) -> None:
        await self._call(site, "answer", {"sdp": sdp, "revision": revision})

    async def close(self, site: Site) -> None:
        if site.sio is not None and site.sio.connected:
            await site.sio.disconnect()


# -- sites -------------------------------------------------------------------------------------


@dataclass
class Site:
    name: str
    audio: bool
    video: bool
    subscribe: bool
    speaking: bool = False
    last_n: int | None = None
    token: str | None = None
    participant_id: str = ""
    control: Any = None
    receiver: Receiver | None = None
    send_pc: RTCPeerConnection | None = None
    recv_pc: RTCPeerConnection | None = None
    streams: list[OutStream] = field(default_factory=list)
    sio: Any = None
    negotiating: asyncio.Lock = field(default_factory=asyncio.Lock)
    trailer: bool = True
    sockets: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.participant_id = self.name

    async def publish(self) -> None:
        pc = self.send_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceivers = []
        if self.audio:
            transceivers.append(pc.addTransceiver("audio", direction="sendonly"))
        if self.video:
            t = pc.addTransceiver("video", direction="sendonly")
            t.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                   if c.mimeType in ("video/VP8", "video/rtx")])
            transceivers.append(t)
        for t in transceivers:
            seams.neutralize_sender(t.sender)
            seams.neutralize_receiver(t.receiver)
        seams.configure_ice(pc, LOOPBACK, [])
        await pc.setLocalDescription(await pc.createOffer())
        answer = await self.control.publish(self, pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        dtls = seams.dtls_transports(pc)[0]
        egress = seams.SrtpEgress(dtls)

        async def no_rtp(data: bytes, arrival_time_ms: int = 0) -> None:
            pass

        async def on_rtcp(data: bytes) -> None:
            try:
                plain = data
                pos = 0
                while pos + 4 <= len(plain):
                    pt, fmt = plain[pos + 1], plain[pos] & 0x1F
                    if pt == 206 and fmt in (1, 4):
                        for stream in self.streams:
                            if stream.kind == "video":
                                stream.keyframe_wanted = True
                    pos += (((plain[pos + 2] << 8) | plain[pos + 3]) + 1) * 4
            except IndexError:
                pass

        seams.install_packet_hooks(dtls, no_rtp, on_rtcp)
        for t in transceivers:
            codecs, _ = seams.negotiated_parameters(t)
            ssrc, _ = seams.sender_ssrcs(t.sender)
            stream = OutStream(site=self.name, kind=t.kind, egress=egress, ssrc=ssrc,
                               payload_type=codecs[0].payloadType, ext_ids=ext_ids_of(t), mid=t.mid,
                               trailer=self.trailer, seq=int.from_bytes(os.urandom(2), "big") & 0x7FFF,
                               ts=int.from_bytes(os.urandom(4), "big"), speaking=self.speaking)
            self.streams.append(stream)

    async def do_subscribe(self) -> None:
        self.recv_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        reply = await self.control.subscribe(self)
        if reply.get("sdp"):
            await self._answer(reply["sdp"], reply.get("revision", 0), reply.get("consumers", []))

    async def on_server_offer(self, data: dict[str, Any]) -> None:
        if self.recv_pc is not None:
            await self._answer(data["sdp"], data["revision"], data.get("consumers", []))

    async def _answer(self, sdp: str, revision: int, consumers: list[dict[str, Any]]) -> None:
        async with self.negotiating:
            pc = self.recv_pc
            assert pc is not None and self.receiver is not None
            self.receiver.learn(self.name, sdp, consumers)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for t in pc.getTransceivers():
                if getattr(t.receiver, "_RTCRtpReceiver__started", True) is False and not getattr(t, "_bench", False):
                    seams.neutralize_receiver(t.receiver)
                    t._bench = True  # type: ignore[attr-defined]
            seams.configure_ice(pc, LOOPBACK, [])
            await pc.setLocalDescription(await pc.createAnswer())  # gathers: the sockets exist after this
            for dtls in seams.dtls_transports(pc):
                if not getattr(dtls, "_bench_hooked", False):
                    dtls._bench_hooked = True

                    async def no_rtp(data: bytes, arrival_time_ms: int = 0) -> None:
                        pass

                    async def no_rtcp(data: bytes) -> None:
                        pass

                    seams.install_packet_hooks(dtls, no_rtp, no_rtcp)
                    hook_datagrams(dtls, self.receiver.handler(self.name, lambda d=dtls: rx_session(d)),
                                   self.sockets)
            await self.control.answer(self, pc.localDescription.sdp, revision)

    async def close(self) -> None:
        await self.control.close(self)
        for pc in (self.send_pc, self.recv_pc):
            if pc is not None:
                await pc.close()
        for sock in self.sockets:
            sock.close()


# -- the process -------------------------------------------------------------------------------


class Pacer:
    def __init__(self, media: MediaLoop) -> None:
        self.media = media
        self.heap: list[tuple[float, int, OutStream]] = []
        self.count = 0
        self.late_max = 0.0

    def add(self, stream: OutStream, start: float) -> None:
        heapq.heappush(self.heap, (start, self.count, stream))
        self.count += 1

    async def run(self) -> None:
        heap = self.heap
        while True:
            if not heap:
                await asyncio.sleep(0.05)
                continue
            due, _, stream = heap[0]
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            heapq.heappop(heap)
            if now - due > 0.2:  # fell far behind: do not burst to catch up
                due = now
            interval = stream.send_video(self.media) if stream.kind == "video" else stream.send_audio(self.media)
            heapq.heappush(heap, (due + interval, self.count, stream))
            self.count += 1


def connection_states(sites: list[Site]) -> dict[str, int]:
    """How many send/recv peer connections are in each state, e.g. {"send:connected": 50}."""
    counts: dict[str, int] = {}
    for site in sites:
        for name, pc in (("send", site.send_pc), ("recv", site.recv_pc)):
            if pc is not None:
                key = f"{name}:{pc.connectionState}"
                counts[key] = counts.get(key, 0) + 1
    return counts


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


async def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    for noisy in ("aiortc", "aioice", "socketio", "engineio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    seams.speed_up_negotiation()  # the generator's SDP work must not starve its own publishers
    config = json.loads(sys.stdin.readline())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    media = load(MediaParams())
    receiver = Receiver(config["measure_delay"])
    http = aiohttp.ClientSession()
    if config["control"] == "sio":
        control: Any = SioControl(config["url"])
    else:
        control = BenchControl(config["url"], http)
    sites = [Site(name=s["name"], audio=s["audio"], video=s["video"], subscribe=s["subscribe"],
                  speaking=s.get("speaking", False), last_n=s.get("last_n"), token=s.get("token"),
                  control=control, receiver=receiver, trailer=config["trailer"])
             for s in config["sites"]]
    pacer = Pacer(media)
    pacer_task: asyncio.Task[None] | None = None
    concurrency = asyncio.Semaphore(config.get("concurrency", 4))

    async def limited(coro: Any) -> None:
        async with concurrency:
            await coro

    try:
        await asyncio.gather(*(limited(s.control.join(s)) for s in sites))
        await asyncio.gather(*(limited(s.publish()) for s in sites if s.audio or s.video))
        start = time.monotonic() + 0.1
        for i, site in enumerate(sites):
            for stream in site.streams:
                pacer.add(stream, start + (i * 0.0137) % 0.066)
        pacer_task = asyncio.ensure_future(pacer.run())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
                s.send_pc is not None and s.send_pc.connectionState != "connected" for s in sites):
            await asyncio.sleep(0.2)
        emit("published", states=connection_states(sites))
        cpu0 = 0.0
        t0 = 0.0
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "quit":
                break
            if line == "subscribe":
                # One at a time, with a pause: each is a large offer/answer that keeps the SFU's and
                # this process's event loops busy; aioice's consent checks (one try, ~0.5 s, every
                # ~5 s) close a connection after 6 consecutive misses.
                for site in sites:
                    if site.subscribe:
                        await site.do_subscribe()
                        await asyncio.sleep(config.get("subscribe_pause", 0.0))
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and any(
                        s.recv_pc is not None and s.recv_pc.connectionState != "connected" for s in sites):
                    await asyncio.sleep(0.2)
                emit("subscribed", streams=len(receiver.streams), states=connection_states(sites))
            elif line == "start":
                receiver.reset()
                receiver.measuring = True
                for site in sites:
                    for stream in site.streams:
                        stream.sent = 0
                        stream.window_frames = [] if config["measure_delay"] == "frames" else None
                cpu0, t0 = cpu_seconds(), time.monotonic()
                emit("started")
            elif line == "stop":
                receiver.measuring = False
                cpu = cpu_seconds() - cpu0
                elapsed = time.monotonic() - t0
                streams = [
                    {"publisher": s.publisher, "kind": s.kind, "received": s.count,
                     "expected": (s.max - s.base + 1) if s.base >= 0 else 0}
                    for s in receiver.streams.values()
                ]
                sent = {f"{st.site}/{st.kind}": st.sent for site in sites for st in site.streams}
                frames_sent = {f"{st.site}": st.window_frames for site in sites for st in site.streams
                               if st.kind == "video" and st.window_frames is not None}
                hist = {kind: {i: n for i, n in enumerate(h) if n} for kind, h in receiver.hist.items()}
                emit("result", states=connection_states(sites), cpu_seconds=cpu, elapsed=elapsed, streams=streams, sent=sent,
                     hist=hist, bin_ns=BIN_NS, frames=receiver.frames, frames_sent=frames_sent,
                     unknown=receiver.unknown, rtcp=receiver.rtcp, trailer_missing=receiver.trailer_missing,
                     unprotect_errors=receiver.unprotect_errors,
                     send_failures=sum(st.send_failures for site in sites for st in site.streams))
    finally:
        if pacer_task is not None:
            pacer_task.cancel()
        for site in sites:
            try:
                await asyncio.wait_for(site.close(), 5)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        await http.close()


if __name__ == "__main__":
    asyncio.run(main())
