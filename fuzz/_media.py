"""A live forwarding path for the RTP and RTCP targets: what a WebRtcTransport does with a decrypted
datagram (media/transport.py ``_on_rtp`` / ``_on_rtcp``), without sockets or aiortc.

Each input gets a fresh pair of producers (VP8 video with RTX and NACK, Opus audio with the audio
level extension) and a subscriber's slots carrying them (a video slot with RTX, an audio slot), primed
with a few real packets, so every input is reproducible on its own. The video slot switched once
before the input (from a first source to the video producer), so its sequence, timestamp and VP8
PictureID offsets are live. Everything the slots and producers send must parse again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters

from fuzz import check
from media.demux import dispatch_rtcp, learn_ssrc
from media.parameters import StreamParameters
from media.producer import Producer
from media.rewriter import ExtensionIds
from media.rtcp import build_sr, parse_compound
from media.rtp_packet import RtpPacketView, build_rtp, is_rtcp, monotonic_ms, ntp_now
from media.slot import Slot

VIDEO_PT, VIDEO_RTX_PT, AUDIO_PT = 96, 97, 111
VIDEO_SSRC, VIDEO_RTX_SSRC, AUDIO_SSRC = 1111, 2222, 5555
#: The subscriber's slots (the corpora's RTCP names these SSRCs).
SLOT_VIDEO_SSRC, SLOT_VIDEO_RTX, SLOT_AUDIO_SSRC, SLOT_AUDIO_RTX = 3333, 4444, 6666, 7777
FIRST_SSRC = 8888
#: The publisher connection's header extension ids (Chromium's offer), and what a subscriber's
#: connection negotiates from the server's offer (aiortc offers abs-send-time for video only).
PUBLISHER_IDS = ExtensionIds(mid=4, audio_level=1, abs_send_time=2)
SUBSCRIBER_IDS = ExtensionIds(mid=1, audio_level=3, abs_send_time=2)
SUBSCRIBER_AUDIO_IDS = ExtensionIds(mid=1, audio_level=2)
SUBSCRIBER_VIDEO_IDS = ExtensionIds(mid=1, abs_send_time=3)
KEYFRAME = bytes([0x90, 0x80, 0x05, 0x10, 0x00, 0x9D, 0x01, 0x2A]) + b"k" * 64
DELTA = bytes([0x90, 0x80, 0x06, 0x11, 0x01]) + b"d" * 64

_FEEDBACK = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli"),
             RTCRtcpFeedback(type="ccm", parameter="fir")]
_LOOP = asyncio.new_event_loop()


def _params(kind: str, pt: int, rtx: int | None, mid: str, ids: ExtensionIds) -> StreamParameters:
    if kind == "video":
        codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=pt, rtcpFeedback=_FEEDBACK)
    else:
        codec = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=pt)
    return StreamParameters(kind=kind, mid=mid, codec=codec, rtx_payload_type=rtx, ext_ids=ids,
                            nack=kind == "video", pli=kind == "video")


def _check_rtp_out(data: bytes) -> None:
    try:
        RtpPacketView.parse(data)
    except ValueError as exc:
        raise AssertionError(f"the SFU sent RTP it cannot parse itself ({exc}): {data[:64].hex()}") from None
    check(not is_rtcp(data), f"the SFU sent RTP that demultiplexes as RTCP: {data[:16].hex()}")


def _check_rtcp_out(data: bytes) -> None:
    try:
        parse_compound(data)
    except ValueError as exc:
        raise AssertionError(f"the SFU sent RTCP it cannot parse itself ({exc}): {data[:64].hex()}") from None


class ForwardingPath:
    """Producers of a publisher and the slots of a subscriber carrying them, as transports hold them."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.producers = [
            self._producer("video", VIDEO_PT, VIDEO_RTX_PT, "1", VIDEO_SSRC, VIDEO_RTX_SSRC),
            self._producer("audio", AUDIO_PT, None, "0", AUDIO_SSRC, None),
        ]
        # An unsignalled publisher (Firefox with simulcast off, or a late SSRC): learnt by MID or PT.
        self.unsignalled = self._producer("video", 100, 101, "2", None, None)
        self.by_ssrc: dict[int, Producer] = {VIDEO_SSRC: self.producers[0], VIDEO_RTX_SSRC: self.producers[0],
                                             AUDIO_SSRC: self.producers[1]}
        # The video slot's first source, before the switch to the publisher's video.
        self.first = self._producer("video", VIDEO_PT, VIDEO_RTX_PT, "3", FIRST_SSRC, None)
        self.slots = [
            self._slot("video", SLOT_VIDEO_SSRC, SLOT_VIDEO_RTX, "v", 98, 99),
            self._slot("audio", SLOT_AUDIO_SSRC, SLOT_AUDIO_RTX, "a", 111, None),
        ]
        self.slot_by_ssrc = {s.ssrc: s for s in self.slots} | {s.rtx_ssrc: s for s in self.slots}

    def _producer(self, kind: str, pt: int, rtx: int | None, mid: str, ssrc: int | None,
                  rtx_ssrc: int | None) -> Producer:
        return Producer(producer_id=f"p{mid}", participant_id="pub", stream_id="s",
                        parameters=_params(kind, pt, rtx, mid, PUBLISHER_IDS), ssrc=ssrc, rtx_ssrc=rtx_ssrc,
                        rtcp_ssrc=1, send_rtcp=self._send_rtcp, rtx_history_ms=1000, pli_throttle_ms=500,
                        on_audio_level=lambda *args: None)

    def _slot(self, kind: str, ssrc: int, rtx_ssrc: int, mid: str, pt: int, rtx: int | None) -> Slot:
        slot = Slot(slot_id=f"{kind}-0", kind=kind, ssrc=ssrc, rtx_ssrc=rtx_ssrc, cname="s",  # type: ignore[arg-type]
                    stream_id=f"{kind}-0", send_rtp=self._send_rtp, send_rtcp=self._send_rtcp)
        ids = SUBSCRIBER_VIDEO_IDS if kind == "video" else SUBSCRIBER_AUDIO_IDS
        slot.configure(_params(kind, pt, rtx, mid, ids))
        return slot

    def _send_rtp(self, data: bytes) -> bool:
        _check_rtp_out(data)
        self.sent.append(data)
        return True

    def _send_rtcp(self, data: bytes) -> bool:
        _check_rtcp_out(data)
        self.sent.append(data)
        return True

    def prime(self) -> None:
        """The video slot on a first source for one picture, then switched to the publisher's video; the
        audio slot on the publisher's audio. A keyframe and a few packets on each stream, and a sender
        report: history, epochs, PictureID offsets, RTT."""
        video, audio = self.slots
        video.switch_to(self.first)
        self.first.handle_rtp(RtpPacketView.parse(
            build_rtp(payload_type=VIDEO_PT, sequence_number=7, timestamp=1, ssrc=FIRST_SSRC, payload=KEYFRAME,
                      marker=1), monotonic_ms()))
        video.switch_to(self.producers[0])
        audio.switch_to(self.producers[1])
        for seq in range(100, 104):
            self.on_rtp(build_rtp(payload_type=VIDEO_PT, sequence_number=seq, timestamp=9000 * seq, ssrc=VIDEO_SSRC,
                                  payload=KEYFRAME if seq == 100 else DELTA, marker=1,
                                  extensions=[(4, b"1"), (2, b"\x00\x01\x02")]))
            self.on_rtp(build_rtp(payload_type=AUDIO_PT, sequence_number=seq, timestamp=960 * seq, ssrc=AUDIO_SSRC,
                                  payload=b"\xfc" + b"o" * 40, extensions=[(1, b"\x9a"), (4, b"0")]))
        self.on_rtcp(build_sr(VIDEO_SSRC, ntp_now(), 9000 * 103, 4, 400) + build_sr(AUDIO_SSRC, ntp_now(), 960 * 103, 4, 160))

    def on_rtp(self, data: bytes) -> None:
        """WebRtcTransport._on_rtp: ValueError is the documented refusal."""
        try:
            packet = RtpPacketView.parse(data, monotonic_ms())
        except ValueError:
            return
        producer = self.by_ssrc.get(packet.ssrc)
        if producer is None:
            producer = learn_ssrc([*self.producers, self.unsignalled], packet)
            if producer is None:
                return
            for value in (producer.ssrc, producer.rtx_ssrc):
                if value is not None:
                    self.by_ssrc[value] = producer
        try:
            producer.handle_rtp(packet)
        except ValueError:
            return

    def on_rtcp(self, data: bytes) -> None:
        """WebRtcTransport._on_rtcp: ValueError is the documented refusal."""
        try:
            packets = parse_compound(data)
        except ValueError:
            return
        dispatch_rtcp(packets, self.by_ssrc, self.slot_by_ssrc)

    def close(self) -> None:
        for slot in self.slots:
            slot.close()
        for producer in [*self.producers, self.unsignalled, self.first]:
            producer.close()


def run(body: Callable[[ForwardingPath], Any]) -> None:
    """Run ``body`` on a fresh, primed path inside a running event loop (producers arm timers)."""
    random.seed(0)

    async def go() -> None:
        path = ForwardingPath()
        try:
            path.prime()
            body(path)
        finally:
            path.close()

    _LOOP.run_until_complete(go())
