"""Packet classes, rewriting, history and NACK bookkeeping (no network)."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

from media.history import PacketHistory
from media.keyframe import h264_is_keyframe, vp8_is_keyframe
from media.nack import NackTracker
from media.rewriter import ExtensionIds, RtpRewriter
from media.rtcp import (
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    ReportBlock,
    SenderReport,
    build_fir,
    build_nack,
    build_pli,
    build_rr,
    build_sdes_cname,
    build_sr,
    parse_compound,
)
from media.rtp_packet import RtpPacketView, build_rtp


def aiortc_map(mid: int, level: int, abs_time: int) -> HeaderExtensionsMap:
    exts = []
    for x_id, uri in (
        (mid, "urn:ietf:params:rtp-hdrext:sdes:mid"),
        (level, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        (abs_time, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    ):
        if x_id:
            exts.append(RTCRtpHeaderExtensionParameters(id=x_id, uri=uri))
    m = HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=exts))
    return m


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x60\x00", "less than 12 bytes"),
        (b"\x40" + bytes(11), "invalid version"),
        (b"\x82" + bytes(11), "truncated CSRC"),
        (b"\x90" + bytes(11) + b"\xbe\xde", "truncated extension profile"),
        (b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4), "truncated extension value"),
        (b"\xa0" + bytes(11) + b"\x05", "padding length 5 is invalid"),
    ],
)
def test_malformed_rtp_raises_precise_value_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RtpPacketView.parse(data)


def test_view_parses_like_aiortc_and_reads_extensions() -> None:
    data = build_rtp(
        payload_type=111, sequence_number=65535, timestamp=123, ssrc=42, payload=b"opus", marker=1,
        extensions=[(1, b"0"), (2, b"\x9e")],
    )
    view = RtpPacketView.parse(data)
    ref = RtpPacket.parse(data, aiortc_map(1, 2, 0))
    assert (view.payload_type, view.sequence_number, view.timestamp, view.ssrc, view.marker) == (
        ref.payload_type, ref.sequence_number, ref.timestamp, ref.ssrc, ref.marker
    )
    assert view.payload == ref.payload == b"opus"
    assert view.extension(2) == b"\x9e" and view.extension(1) == b"0" and view.extension(3) is None
    assert ref.extensions.audio_level == (True, 0x1E)


def test_rewriter_output_parses_with_the_subscriber_extension_ids() -> None:
    data = build_rtp(payload_type=111, sequence_number=7, timestamp=1000, ssrc=42, payload=b"x" * 50,
                     extensions=[(1, b"pub"), (2, b"\x85")])
    view = RtpPacketView.parse(data)
    view.audio_level = view.extension(2)[0]
    rewriter = RtpRewriter(ssrc=99, payload_type=96, ids=ExtensionIds(mid=4, audio_level=9), mid="7")
    out = RtpPacket.parse(rewriter.serialize(view, 500, 2000, b""), aiortc_map(4, 9, 0))
    assert (out.ssrc, out.payload_type, out.sequence_number, out.timestamp) == (99, 96, 500, 2000)
    assert out.extensions.mid == "7" and out.extensions.audio_level == (True, 5)
    assert out.payload == b"x" * 50

    video = RtpRewriter(ssrc=5, payload_type=97, ids=ExtensionIds(mid=1, abs_send_time=3), mid="12")
    vout = RtpPacket.parse(video.serialize(view, 1, 2, b"\x01\x02\x03"), aiortc_map(1, 0, 3))
    assert vout.extensions.abs_send_time == 0x010203 and vout.extensions.mid == "12"

    rtx = RtpPacket.parse(
        video.serialize(view, 9, 2, b"\x00\x00\x01", ssrc=6, payload_type=98, prefix=struct.pack("!H", 1))
    )
    assert (rtx.ssrc, rtx.payload_type, rtx.sequence_number) == (6, 98, 9)
    assert rtx.payload == b"\x00\x01" + b"x" * 50

    bare = RtpRewriter(ssrc=5, payload_type=97, ids=ExtensionIds(), mid=None)
    assert bare.serialize(view, 1, 2, b"")[0] == 0x80


def test_rtx_unwrap() -> None:
    original = build_rtp(payload_type=97, sequence_number=300, timestamp=9, ssrc=1, payload=b"vp8")
    rtx = build_rtp(payload_type=98, sequence_number=5, timestamp=9, ssrc=2, payload=struct.pack("!H", 300) + b"vp8")
    view = RtpPacketView.parse(rtx)
    view.unwrap_rtx(97, 1)
    ref = RtpPacketView.parse(original)
    assert (view.sequence_number, view.payload_type, view.ssrc, view.payload) == (300, 97, 1, ref.payload)
    padding_only = RtpPacketView.parse(build_rtp(payload_type=98, sequence_number=6, timestamp=9, ssrc=2, payload=b"\x01"))
    with pytest.raises(ValueError, match="original sequence number"):
        padding_only.unwrap_rtx(97, 1)


def test_rtcp_round_trip_and_errors() -> None:
    block = ReportBlock(ssrc=7, fraction_lost=3, packets_lost=-2, highest_sequence=70000, jitter=5, lsr=8, dlsr=9)
    compound = (
        build_sr(1, 2**40 + 5, 77, 10, 1000)
        + build_sdes_cname(1, "cname")
        + build_rr(2, [block])
        + build_nack(3, 4, [65534, 65535, 0, 40])
        + build_pli(3, 4)
        + build_fir(3, 4, 2)
    )
    packets = parse_compound(compound)
    assert packets[0] == SenderReport(1, 2**40 + 5, 77, 10, 1000, [])
    assert packets[1] == ReceiverReport(2, [block])
    assert packets[2] == Nack(3, 4, [65534, 65535, 0, 40])
    assert packets[3] == Pli(3, 4)
    assert packets[4] == Fir(3, [(4, 2)])
    with pytest.raises(ValueError, match="less than 4 bytes"):
        parse_compound(b"\x80")
    with pytest.raises(ValueError, match="invalid version"):
        parse_compound(b"\x00\xc8\x00\x00")
    with pytest.raises(ValueError, match="truncated"):
        parse_compound(b"\x80\xc8\x00\x06" + bytes(8))
    with pytest.raises(ValueError, match="sender report length"):
        parse_compound(b"\x81\xc8\x00\x06" + bytes(24))


def test_history_is_sized_in_time_not_packets() -> None:
    # 2.5 Mbit/s in 1200-byte packets: ~260 packets per second.
    history = PacketHistory(history_ms=1000)
    for i in range(600):
        view = RtpPacketView.parse(build_rtp(payload_type=97, sequence_number=i, timestamp=i, ssrc=1, payload=bytes(1188)))
        view.arrival_ms = i * 1000 // 260
        history.store(view)
    now = 599 * 1000 // 260
    assert 255 <= len(history) <= 265
    assert history.span_ms() >= 990
    assert history.get(599 - 255, now) is not None
    assert history.get(10, now) is None
    assert history.get(599, now + 2000) is None


def test_nack_tracker_schedules_and_gives_up() -> None:
    tracker = NackTracker(max_age_ms=500, max_retries=3)
    tracker.add(10, 0)
    assert tracker.add(14, 0)  # 11, 12, 13 missing
    assert tracker.due(0, 100) == [11, 12, 13]
    assert tracker.due(50, 100) == []
    tracker.add(12, 60)
    assert tracker.recovered == 1
    assert tracker.due(100, 100) == [11, 13]
    tracker.due(200, 100)
    assert tracker.due(300, 100) == []  # three NACKs each: given up
    assert tracker.unrecovered == 2 and tracker.keyframe_needed
    tracker2 = NackTracker(max_missing=10)
    tracker2.add(0, 0)
    assert not tracker2.add(100, 0) and tracker2.keyframe_needed and not tracker2.missing
    tracker3 = NackTracker()
    tracker3.add(65534, 0)
    tracker3.add(1, 0)
    assert tracker3.due(0, 0) == [65535, 0]


def test_keyframe_detection() -> None:
    assert vp8_is_keyframe(bytes([0x90, 0x80, 0x81, 0x02, 0x10]))  # X, I (15-bit id), P=0
    assert not vp8_is_keyframe(bytes([0x90, 0x80, 0x81, 0x02, 0x11]))
    assert not vp8_is_keyframe(bytes([0x80, 0x00]))  # not a partition start
    assert vp8_is_keyframe(bytes([0x10, 0x00]))
    assert h264_is_keyframe(bytes([0x65]))
    assert h264_is_keyframe(bytes([0x18, 0x00, 0x02, 0x67, 0x42]))
    assert h264_is_keyframe(bytes([0x7C, 0x85]))
    assert not h264_is_keyframe(bytes([0x41]))
