"""Loopback harness: aiortc publisher/subscriber clients around a media.Router.

Clients use aiortc's encoders/decoders (client side only); the server must never.
Everything binds 127.0.0.1 and no ICE server is configured: tests talk only to loopback.

A subscriber is a receiving connection with slots (WebRtcTransport.create_slots), negotiated once:
the server's one offer, the client's answer; the router fills the slots from then on, without SDP.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy
from av import AudioFrame, VideoFrame

from media import Producer, Router, Slot, SlotSet, SlotSwitch, WebRtcTransport
from media import aiortc_seams as seams
from media.bandwidth import RembLossEstimator

LOOPBACK = ["127.0.0.1"]


class ToneTrack(AudioStreamTrack):
    """48 kHz mono sine; ``amplitude`` 0..1 (0: silence) sets the RFC 6464 level aiortc sends."""

    def __init__(self, amplitude: float = 0.5) -> None:
        super().__init__()
        self.amplitude = amplitude
        self._cache: dict[float, bytes] = {}

    def _samples(self) -> bytes:
        if self.amplitude not in self._cache:
            peak = int(32767 * self.amplitude)
            self._cache[self.amplitude] = array.array(
                "h", (int(peak * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(960))
            ).tobytes()
        return self._cache[self.amplitude]

    async def recv(self) -> AudioFrame:
        if not hasattr(self, "_t0"):
            self._t0 = time.time()
            self._ts = 0
        else:
            self._ts += 960
            await asyncio.sleep(max(0.0, self._t0 + self._ts / 48000 - time.time()))
        frame = AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(self._samples())
        frame.pts = self._ts
        frame.sample_rate = 48000
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


class PatternTrack(VideoStreamTrack):
    """Small frames whose brightness changes every frame (cheap to encode, never static)."""

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self.width, self.height = width, height
        self._n = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height)
        self._n += 1
        luma = bytes([(self._n * 7 + x) & 0xFF for x in range(self.width)]) * self.height
        frame.planes[0].update(luma)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


def client_pc(*, max_bundle: bool = False) -> RTCPeerConnection:
    """A client peer connection. A receiving one must bundle everything (``max_bundle``): with aiortc's
    default (balanced) policy, the second and later m-lines of one kind created by one offer keep a
    DTLS transport that BUNDLE then discards (aiortc 1.16), and their packets reach the first
    receiver of that kind."""
    policy = RTCBundlePolicy.MAX_BUNDLE if max_bundle else RTCBundlePolicy.BALANCED
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=policy))


@dataclass
class Subscriber:
    """A receiving connection with its slots; ``switches`` records every SlotSwitch of the set."""

    participant_id: str
    pc: RTCPeerConnection
    transport: WebRtcTransport
    slot_set: SlotSet
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    switches: list[SlotSwitch] = field(default_factory=list)

    async def negotiate(self) -> None:
        """The one negotiation of the receiving connection: the server's offer, the client's answer."""
        offer = await self.transport.create_offer()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        seams.configure_ice(self.pc, LOOPBACK, [])
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        await self.transport.accept_answer(without_remb(self.pc.localDescription.sdp))

    def slot(self, slot_id: str) -> Slot:
        return self.slot_set.slots[slot_id]

    def track(self, slot_id: str) -> MediaStreamTrack:
        """The client's receiving track of a slot (by the slot's m-line)."""
        mid = self.slot(slot_id).mid
        return next(t.receiver.track for t in self.pc.getTransceivers() if t.mid == mid)

    def sdps(self) -> tuple[str, str]:
        """(the server's offer, the client's answer) as they stand: they must never change."""
        return self.transport.peer_connection.localDescription.sdp, self.pc.localDescription.sdp

    def carrying(self, producer: Producer) -> list[Slot]:
        """The slots whose current source is ``producer``."""
        return [s for s in self.slot_set.slots.values() if s.source is producer]


@dataclass
class Publisher:
    participant_id: str
    pc: RTCPeerConnection
    transport: WebRtcTransport
    producers: dict[str, Producer]
    audio: ToneTrack | None
    video: PatternTrack | None


class Harness:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.pcs: list[RTCPeerConnection] = []

    async def publisher(self, participant_id: str, *, audio: bool = True, video: bool = True, amplitude: float = 0.5) -> Publisher:
        pc = client_pc()
        self.pcs.append(pc)
        tone = ToneTrack(amplitude) if audio else None
        pattern = PatternTrack() if video else None
        for track in (tone, pattern):
            if track is not None:
                pc.addTrack(track)
        seams.configure_ice(pc, LOOPBACK, [])
        await pc.setLocalDescription(await pc.createOffer())
        transport = self.router.create_transport(participant_id, "send")
        answer = await transport.accept_offer(pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        producers = {}
        for track in transport.offered_tracks():
            producers[track.kind] = transport.produce(track.mid)
        return Publisher(participant_id, pc, transport, producers, tone, pattern)

    async def subscriber(self, participant_id: str, *, videos: int = 1, audios: int = 1) -> Subscriber:
        """A receiving connection with the stage, ``videos`` thumbnails and ``audios`` extra voices,
        negotiated once; the router fills the slots."""
        pc = client_pc(max_bundle=True)
        self.pcs.append(pc)
        transport = self.router.create_transport(participant_id, "recv")
        slot_set = transport.create_slots(videos=videos, audios=audios)
        # The loopback is a link without limit; these tests are about slots, not budgets (those are
        # tests/media/test_site_budget.py and the link lab's): the site's estimate starts high and
        # the aiortc client's REMB (noisy in a loop shared with the server) is not honoured.
        assert transport.budget is not None
        transport.budget.estimator = RembLossEstimator(LOOPBACK_START_BPS)
        sub = Subscriber(participant_id, pc, transport, slot_set)
        slot_set.on("switch", sub.switches.append)
        pc.on("track", sub.tracks.append)
        await sub.negotiate()
        return sub

    async def close(self) -> None:
        await self.router.close()
        for pc in self.pcs:
            await pc.close()


#: The site estimate a loopback subscriber starts with (media/bandwidth.py).
LOOPBACK_START_BPS = 50_000_000


def without_remb(sdp: str) -> str:
    """An answer that does not negotiate goog-remb (its REMB feedback is then ignored)."""
    return "".join(line for line in sdp.splitlines(keepends=True) if not line.rstrip().endswith(" goog-remb"))


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached within %.1fs" % timeout)
        await asyncio.sleep(interval)


async def recv_frames(track: MediaStreamTrack, count: int, timeout: float = 10.0) -> list[object]:
    async def run() -> list[object]:
        return [await track.recv() for _ in range(count)]

    return await asyncio.wait_for(run(), timeout)


