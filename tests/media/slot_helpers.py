"""Builders for the slot tests: producers fed with real RTP packets (VP8 with RFC 7741 descriptors,
Opus), and a slot capturing what it sends."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters

from media.parameters import StreamParameters
from media.producer import Producer
from media.rewriter import ExtensionIds
from media.rtcp import Pli, parse_compound
from media.rtp_packet import RtpPacketView, build_rtp, monotonic_ms
from media.slot import Slot
from media.slot_report import SlotSwitch
from media.vp8_descriptor import Vp8Descriptor

FEEDBACK = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")]


def video_params(pt: int, rtx: int | None, mid: str) -> StreamParameters:
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=pt, rtcpFeedback=FEEDBACK)
    return StreamParameters(kind="video", mid=mid, codec=codec, rtx_payload_type=rtx,
                            ext_ids=ExtensionIds(mid=1, abs_send_time=3), nack=True, pli=True)


def audio_params(pt: int, mid: str) -> StreamParameters:
    codec = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=pt)
    return StreamParameters(kind="audio", mid=mid, codec=codec, rtx_payload_type=None,
                            ext_ids=ExtensionIds(mid=1, audio_level=2), nack=False, pli=False)


def vp8_payload(picture_id: int, tl0: int, *, key: bool, start: bool = True, tid: int = 0, sync: bool = False,
                size: int = 60) -> bytes:
    """RFC 7741 descriptor X=1 I=1(M=1, 15 bit) L=1 T=1 (TID, Y), then a VP8 payload header (P bit)."""
    b0 = 0x80 | (0x10 if start else 0)
    desc = bytes([b0, 0xE0]) + struct.pack("!H", 0x8000 | picture_id) + bytes([tl0, tid << 6 | (0x20 if sync else 0)])
    header = bytes([0x00 if key else 0x01])
    return desc + header + (b"K" if key else b"D") * size


@dataclass
class Source:
    """A producer and the RTCP it sent upstream (PLIs, NACKs)."""

    producer: Producer
    ssrc: int
    pt: int
    upstream: list[bytes] = field(default_factory=list)
    seq: int = 0
    ts: int = 0
    picture_id: int = 0
    tl0: int = 0

    def plis(self) -> int:
        return sum(isinstance(p, Pli) for d in self.upstream for p in parse_compound(d))

    def feed(self, payload: bytes, *, seq: int | None = None, ts: int | None = None, arrival_ms: int | None = None,
             marker: int = 1, level: int | None = None) -> None:
        if seq is None:
            seq = self.seq
            self.seq = (self.seq + 1) & 0xFFFF
        extensions = [(2, bytes([level]))] if level is not None else None
        data = build_rtp(payload_type=self.pt, sequence_number=seq, timestamp=self.ts if ts is None else ts,
                         ssrc=self.ssrc, payload=payload, marker=marker, extensions=extensions)
        self.producer.handle_rtp(RtpPacketView.parse(data, monotonic_ms() if arrival_ms is None else arrival_ms))

    def frame(self, *, key: bool = False, packets: int = 1, arrival_ms: int | None = None, step: int = 3000) -> None:
        """One VP8 picture of ``packets`` packets; advances timestamp, PictureID, TL0PICIDX."""
        for i in range(packets):
            self.feed(vp8_payload(self.picture_id, self.tl0, key=key, start=i == 0), marker=int(i == packets - 1),
                      arrival_ms=arrival_ms)
        self.ts = (self.ts + step) & 0xFFFFFFFF
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        self.tl0 = (self.tl0 + 1) & 0xFF

    def layered(self, tid: int, *, sync: bool = False, key: bool = False, packets: int = 1, step: int = 6000,
                size: int = 60) -> None:
        """One picture of an L1T3 stream: TL0PICIDX counts TL0 pictures (a TL0 picture carries its
        own new index, the others the last TL0 picture's); PictureID and timestamp advance."""
        if tid == 0:
            self.tl0 = (self.tl0 + 1) & 0xFF
        for i in range(packets):
            self.feed(vp8_payload(self.picture_id, self.tl0, key=key, start=i == 0, tid=tid, sync=sync, size=size),
                      marker=int(i == packets - 1))
        self.ts = (self.ts + step) & 0xFFFFFFFF
        self.picture_id = (self.picture_id + 1) & 0x7FFF

    def audio(self, *, arrival_ms: int | None = None, level: int | None = None) -> None:
        self.feed(b"\xfc" + b"o" * 40, arrival_ms=arrival_ms, level=level)
        self.ts = (self.ts + 960) & 0xFFFFFFFF


def make_source(name: str, kind: str = "video", *, ssrc: int, pt: int = 96, seq: int = 0, ts: int = 0,
                picture_id: int = 0, tl0: int = 0) -> Source:
    params = video_params(pt, pt + 1, "0") if kind == "video" else audio_params(pt, "1")
    src = Source(producer=None, ssrc=ssrc, pt=pt, seq=seq, ts=ts, picture_id=picture_id, tl0=tl0)  # type: ignore[arg-type]
    src.producer = Producer(
        producer_id=name, participant_id=f"{name}-person", stream_id=f"s-{name}", parameters=params,
        ssrc=ssrc, rtx_ssrc=ssrc + 1, rtcp_ssrc=7, send_rtcp=lambda d: src.upstream.append(d) or True,
        rtx_history_ms=1500, pli_throttle_ms=500,
    )
    return src


@dataclass
class Sink:
    slot: Slot
    sent: list[bytes] = field(default_factory=list)
    rtcp: list[bytes] = field(default_factory=list)
    switches: list[tuple[SlotSwitch, int]] = field(default_factory=list)

    def media(self) -> list[RtpPacketView]:
        """Sent packets on the slot's SSRC (not RTX), parsed."""
        return [v for v in (RtpPacketView.parse(d) for d in self.sent) if v.ssrc == self.slot.ssrc]

    def rtx(self) -> list[RtpPacketView]:
        return [v for v in (RtpPacketView.parse(d) for d in self.sent) if v.ssrc == self.slot.rtx_ssrc]


def make_slot(kind: str = "video", *, pt: int = 100, rtx: int | None = 101, slot_id: str = "video-0") -> Sink:
    sink = Sink(slot=None)  # type: ignore[arg-type]
    sink.slot = Slot(slot_id=slot_id, kind=kind, ssrc=5555, rtx_ssrc=6666, cname="cn", stream_id=slot_id,  # type: ignore[arg-type]
                     send_rtp=lambda d: sink.sent.append(d) or True, send_rtcp=lambda d: sink.rtcp.append(d) or True)
    sink.slot.configure(video_params(pt, rtx, "4") if kind == "video" else audio_params(pt, "5"))
    sink.slot.on("switch", lambda e: sink.switches.append((e, len(sink.sent))))
    return sink


def descriptor(view: RtpPacketView) -> Vp8Descriptor:
    desc = Vp8Descriptor.parse(view.payload)
    assert desc is not None
    return desc
