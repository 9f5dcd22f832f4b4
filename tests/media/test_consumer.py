"""Consumer rewriting state: epochs, retransmission (RTX or plain), sender reports."""

from __future__ import annotations

import struct

from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters

from media.consumer import Consumer
from media.parameters import StreamParameters
from media.producer import Producer
from media.rewriter import ExtensionIds
from media.rtcp import SenderReport, parse_compound
from media.rtp_packet import RtpPacketView, build_rtp, monotonic_ms

VP8 = RTCRtpCodecParameters(
    mimeType="video/VP8", clockRate=90000, payloadType=96,
    rtcpFeedback=[RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")],
)
KEY = bytes([0x10, 0x00]) + b"k" * 100
DELTA = bytes([0x10, 0x01]) + b"d" * 100


def params(pt: int, rtx: int | None, mid: str) -> StreamParameters:
    codec = RTCRtpCodecParameters(mimeType=VP8.mimeType, clockRate=90000, payloadType=pt, rtcpFeedback=VP8.rtcpFeedback)
    return StreamParameters(kind="video", mid=mid, codec=codec, rtx_payload_type=rtx,
                            ext_ids=ExtensionIds(mid=1, abs_send_time=3), nack=True, pli=True)


def make(rtx_pt: int | None) -> tuple[Producer, Consumer, list[bytes], list[bytes]]:
    upstream: list[bytes] = []
    sent: list[bytes] = []
    producer = Producer(
        producer_id="p", participant_id="alice", stream_id="s", parameters=params(96, 97, "0"),
        ssrc=1111, rtx_ssrc=2222, rtcp_ssrc=1, send_rtcp=lambda d: upstream.append(d) or True,
        rtx_history_ms=1500, pli_throttle_ms=500,
    )
    consumer = Consumer(
        consumer_id="c", subscriber_id="bob", producer=producer, ssrc=3333, rtx_ssrc=4444, cname="s",
        send_rtp=lambda d: sent.append(d) or True, send_rtcp=lambda d: sent.append(d) or True,
        on_close=lambda c: None,
    )
    producer.consumers.append(consumer)
    consumer.configure(params(100, rtx_pt, "3"))
    return producer, consumer, sent, upstream


def feed(producer: Producer, seq: int, ts: int, payload: bytes) -> None:
    producer.handle_rtp(RtpPacketView.parse(build_rtp(payload_type=96, sequence_number=seq, timestamp=ts, ssrc=1111, payload=payload), monotonic_ms()))


def rtp(data: bytes) -> RtpPacketView:
    return RtpPacketView.parse(data)


async def test_waits_for_keyframe_and_keeps_sequence_contiguous_across_pause() -> None:
    producer, consumer, sent, upstream = make(rtx_pt=101)
    feed(producer, 10, 0, DELTA)
    assert not sent and consumer.stats.waiting_keyframe_drops == 1
    assert upstream, "activation asked the publisher for a keyframe"
    feed(producer, 11, 3000, KEY)
    feed(producer, 12, 6000, DELTA)
    first = [rtp(d) for d in sent]
    assert [p.ssrc for p in first] == [3333, 3333] and {p.payload_type for p in first} == {100}
    assert first[1].sequence_number == (first[0].sequence_number + 1) & 0xFFFF
    consumer.pause()
    feed(producer, 13, 9000, DELTA)
    consumer.resume()
    feed(producer, 14, 12000, KEY)
    resumed = rtp(sent[-1])
    assert resumed.sequence_number == (first[1].sequence_number + 1) & 0xFFFF
    assert (resumed.timestamp - first[1].timestamp) & 0xFFFFFFFF > 0


async def test_nack_answered_with_rtx_or_plain_retransmission() -> None:
    for rtx_pt in (101, None):
        producer, consumer, sent, _ = make(rtx_pt)
        feed(producer, 500, 0, KEY)
        feed(producer, 501, 3000, DELTA)
        lost = rtp(sent[0])
        sent.clear()
        consumer.handle_nack([lost.sequence_number, (lost.sequence_number + 5) & 0xFFFF])
        assert len(sent) == 1 and consumer.stats.retransmit_misses == 1
        again = rtp(sent[0])
        if rtx_pt is None:
            assert (again.ssrc, again.sequence_number, again.payload_type) == (3333, lost.sequence_number, 100)
            assert again.payload == lost.payload
        else:
            assert (again.ssrc, again.payload_type) == (4444, 101)
            assert struct.unpack("!H", again.payload[:2])[0] == lost.sequence_number
            assert again.payload[2:] == lost.payload
            assert again.timestamp == lost.timestamp


async def test_sender_report_is_translated_publisher_mapping() -> None:
    producer, consumer, sent, _ = make(101)
    feed(producer, 1, 50000, KEY)
    out = rtp(sent[0])
    sent.clear()
    producer.handle_sender_report(SenderReport(1111, ntp_timestamp=(3900000000 << 32), rtp_timestamp=52000, packet_count=1, octet_count=2))
    sr = parse_compound(sent[0])[0]
    assert isinstance(sr, SenderReport) and sr.ssrc == 3333
    assert sr.ntp_timestamp == 3900000000 << 32
    # The publisher said NTP T <-> RTP 52000; our stream sent 50000 as out.timestamp.
    assert (sr.rtp_timestamp - out.timestamp) & 0xFFFFFFFF == 2000


async def test_producer_close_cascades() -> None:
    producer, consumer, _, _ = make(101)
    events: list[str] = []
    consumer.on("producerclose", lambda: events.append("producerclose"))
    consumer.on("close", lambda: events.append("consumer"))
    producer.on("close", lambda: events.append("producer"))
    producer.close()
    assert events == ["producerclose", "consumer", "producer"]
    assert consumer.closed and not producer.consumers
