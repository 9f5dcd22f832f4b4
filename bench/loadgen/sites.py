"""One site of the load generator: its publishing and subscribing peer connections."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpsender import RTCRtpSender

from bench.loadgen.publishers import OutStream, ext_ids_of
from bench.loadgen.subscribers import Receiver, hook_datagrams, rx_session
from media import aiortc_seams as seams

LOOPBACK = ["127.0.0.1"]

@dataclass
class Site:
    name: str
    audio: bool
    video: bool
    subscribe: bool
    speaking: bool = False
    last_n: int | None = None
    #: Extra audio slots asked of the SFU-only server (None: its default, 2).
    audios: int | None = None
    token: str | None = None
    participant_id: str = ""
    control: Any = None
    receiver: Receiver | None = None
    send_pc: RTCPeerConnection | None = None
    recv_pc: RTCPeerConnection | None = None
    streams: list[OutStream] = field(default_factory=list)
    sio: Any = None
    trailer: bool = True
    ice_addresses: list[str] = field(default_factory=lambda: list(LOOPBACK))
    sockets: list[socket.socket] = field(default_factory=list)
    #: Server ``offer`` events received: the slots protocol has none (the receiving connection is
    #: negotiated once, at subscribe), so each is counted, never answered.
    offers: int = 0
    #: Who each slot carries (``slot`` events applied per slot in sequence order: slot id ->
    #: (sequence, participant id)), and when each video slot was first named (monotonic ns).
    slot_map: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    slot_named_at: dict[str, int] = field(default_factory=dict)
    slot_events: int = 0

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
        seams.configure_ice(pc, self.ice_addresses, [])
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
        """Subscribe with the slots (the server's default: stage + 8 thumbnails + 2 voices) and
        answer the one offer; aiortc needs bundlePolicy MAX_BUNDLE for many m-lines of one kind."""
        self.recv_pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        reply = await self.control.subscribe(self)
        if reply.get("sdp"):
            await self._answer(reply["sdp"], reply.get("revision", 1), reply.get("slots", []))

    async def on_server_offer(self, data: dict[str, Any]) -> None:
        self.offers += 1  # not in the slots protocol: counted, never answered

    async def on_slot(self, data: dict[str, Any]) -> None:
        slot_id = data.get("slot_id")
        if not isinstance(slot_id, str):
            return
        sequence = int(data.get("sequence") or 0)
        if sequence <= self.slot_map.get(slot_id, (0, None))[0]:
            return  # older than the last one applied for this slot
        self.slot_events += 1
        participant = data.get("participant_id")
        self.slot_map[slot_id] = (sequence, participant)
        if participant is not None and slot_id not in self.slot_named_at:
            self.slot_named_at[slot_id] = time.monotonic_ns()

    def video_slots_named(self) -> list[int]:
        """When each video slot was first named by a ``slot`` event (monotonic ns), in order."""
        return sorted(t for slot_id, t in self.slot_named_at.items() if "video" in slot_id)

    async def _answer(self, sdp: str, revision: int, slots: list[dict[str, Any]]) -> None:
        pc = self.recv_pc
        assert pc is not None and self.receiver is not None
        self.receiver.learn(self.name, sdp, slots)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for t in pc.getTransceivers():
            seams.neutralize_receiver(t.receiver)
        seams.configure_ice(pc, self.ice_addresses, [])
        await pc.setLocalDescription(await pc.createAnswer())  # gathers: the sockets exist after this
        for dtls in seams.dtls_transports(pc):

            async def no_rtp(data: bytes, arrival_time_ms: int = 0) -> None:
                pass

            async def no_rtcp(data: bytes) -> None:
                pass

            seams.install_packet_hooks(dtls, no_rtp, no_rtcp)
            hook_datagrams(dtls, self.receiver.handler(self.name, lambda d=dtls: rx_session(d)), self.sockets)
        await self.control.answer(self, pc.localDescription.sdp, revision)

    async def close(self) -> None:
        await self.control.close(self)
        for pc in (self.send_pc, self.recv_pc):
            if pc is not None:
                await pc.close()
        for sock in self.sockets:
            sock.close()



def connection_states(sites: list[Site]) -> dict[str, int]:
    """How many send/recv peer connections are in each state, e.g. {"send:connected": 50}."""
    counts: dict[str, int] = {}
    for site in sites:
        for name, pc in (("send", site.send_pc), ("recv", site.recv_pc)):
            if pc is not None:
                key = f"{name}:{pc.connectionState}"
                counts[key] = counts.get(key, 0) + 1
    return counts

