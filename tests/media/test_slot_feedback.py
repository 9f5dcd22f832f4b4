"""What reaches a slot besides its source's packets: the subscriber's RTCP (receiver reports and RTT,
NACK, PLI/FIR, REMB, routed by SSRC as the transport does), server mute, malformed or late packets
(dropped and counted), and closing: what the tests of the removed per-producer consumer checked,
for the Slot."""

from __future__ import annotations

import asyncio

import pytest
from slot_helpers import make_slot, make_source, vp8_payload

from media.demux import dispatch_rtcp
from media.rtcp import (
    SenderReport,
    build_fir,
    build_nack,
    build_pli,
    build_rr,
    parse_compound,
    ReportBlock,
)
from media.rtp_packet import monotonic_ms
from media.slot_set import SlotSet

SUBSCRIBER_SSRC = 0x1234


def remb(bitrate: int, ssrcs: list[int]) -> bytes:
    """An RTCP REMB (RFC draft-alvestrand-rmcat-remb) as browsers send it."""
    from aiortc.rtp import RtcpPsfbPacket, pack_remb_fci

    return bytes(RtcpPsfbPacket(fmt=15, ssrc=SUBSCRIBER_SSRC, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)))


async def test_subscriber_rtcp_reaches_the_slot_by_its_ssrc_or_rtx_ssrc() -> None:
    a = make_source("a", ssrc=1000)
    sink = make_slot()
    slot = sink.slot
    other = make_slot(slot_id="video-1")
    other.slot.ssrc, other.slot.rtx_ssrc = 7777, 8888
    by_ssrc = {5555: slot, 6666: slot, 7777: other.slot, 8888: other.slot}
    slot.switch_to(a.producer)
    a.frame(key=True)
    a.frame()
    sent = sink.media()

    # Receiver report: loss and the round trip from the echoed SR (LSR, DLSR).
    sr_data = slot.sender_report()
    assert sr_data is not None
    sr = next(p for p in parse_compound(sr_data) if isinstance(p, SenderReport))
    lsr = (sr.ntp_timestamp >> 16) & 0xFFFFFFFF
    await asyncio.sleep(0.05)
    block = ReportBlock(ssrc=5555, fraction_lost=26, packets_lost=1, highest_sequence=sent[-1].sequence_number,
                        jitter=3, lsr=lsr, dlsr=65536 // 100)  # held 10 ms
    dispatch_rtcp(parse_compound(build_rr(SUBSCRIBER_SSRC, [block])), {}, by_ssrc)
    assert slot.stats.fraction_lost == 26
    rtt = slot.stats.round_trip_time_ms
    assert rtt is not None and 30 <= rtt <= 1000
    unknown = ReportBlock(ssrc=5555, fraction_lost=0, packets_lost=0, highest_sequence=0, jitter=0, lsr=lsr ^ 1, dlsr=0)
    dispatch_rtcp(parse_compound(build_rr(SUBSCRIBER_SSRC, [unknown])), {}, by_ssrc)
    assert slot.stats.round_trip_time_ms == rtt, "a report echoing no SR of ours leaves the RTT alone"
    assert other.slot.stats.fraction_lost == 0 and other.slot.stats.round_trip_time_ms is None

    # NACK on the media SSRC: RTX retransmission of the slot's own sequence numbers.
    sink.sent.clear()
    dispatch_rtcp(parse_compound(build_nack(SUBSCRIBER_SSRC, 5555, [sent[0].sequence_number])), {}, by_ssrc)
    assert slot.stats.nacks_received == 1 and slot.stats.retransmitted == 1
    (again,) = sink.rtx()
    assert again.payload[2:] == sent[0].payload

    # PLI / FIR, on the media or the RTX SSRC: the source is asked for a keyframe (throttled by it).
    await asyncio.sleep(0.55)
    plis = a.plis()
    dispatch_rtcp(parse_compound(build_pli(SUBSCRIBER_SSRC, 5555) + build_fir(SUBSCRIBER_SSRC, 6666, 3)), {}, by_ssrc)
    assert slot.stats.keyframe_requests_received == 2
    assert a.plis() == plis + 1, "two requests at once: one PLI upstream now"
    assert a.producer.stats.keyframe_requests_throttled >= 1

    # REMB names the slots it limits.
    dispatch_rtcp(parse_compound(remb(250_000, [5555, 7777])), {}, by_ssrc)
    assert slot.stats.remb_bitrate == other.slot.stats.remb_bitrate == 250_000

    # Feedback for an SSRC no slot has goes nowhere.
    dispatch_rtcp(parse_compound(build_pli(SUBSCRIBER_SSRC, 4242) + build_nack(SUBSCRIBER_SSRC, 4242, [1])), {}, by_ssrc)
    assert slot.stats.keyframe_requests_received == 2 and slot.stats.nacks_received == 1


async def test_feedback_on_an_empty_or_audio_slot_sends_nothing_upstream() -> None:
    a = make_source("a", "audio", ssrc=1000, pt=111)
    sink = make_slot("audio", pt=111, rtx=None, slot_id="audio-0")
    slot = sink.slot
    slot.handle_nack([1, 2, 3])  # nothing sent yet
    slot.handle_keyframe_request()
    assert not sink.sent and slot.stats.nacks_received == 1 and slot.stats.retransmitted == 0
    slot.switch_to(a.producer)
    a.audio()
    slot.handle_keyframe_request()
    assert not a.upstream, "no PLI for a voice"
    out = sink.media()[0]
    sink.sent.clear()
    slot.handle_nack([out.sequence_number])
    assert not sink.sent and slot.stats.retransmit_misses == 1, "no history kept for audio"


@pytest.mark.parametrize("how", ["server mute", "pause"])
async def test_source_muted_stops_and_restarts_on_a_keyframe_with_continuous_numbers(how: str) -> None:
    a = make_source("a", ssrc=1000)
    sink = make_slot()
    slot = sink.slot
    slot.switch_to(a.producer)
    t0 = monotonic_ms()
    a.frame(key=True, arrival_ms=t0)
    a.frame(arrival_ms=t0 + 33)
    plis = a.plis()
    if how == "server mute":
        a.producer.set_muted(True)
    else:
        a.producer.pause()
    for i in range(5):
        a.frame(arrival_ms=t0 + 66 + 33 * i)
    assert len(sink.media()) == 2, "nothing forwarded while muted"
    assert a.producer.stats.dropped_muted == 5
    assert slot.target is a.producer, "muting does not switch the slot"
    await asyncio.sleep(0.55)  # leave the PLI throttle window
    if how == "server mute":
        a.producer.set_muted(False)
    else:
        a.producer.resume()
    assert a.plis() == plis + 1, "the slot asks for a keyframe to restart"
    a.frame(arrival_ms=t0 + 1000)  # a delta first: the receiver could not decode it
    a.frame(key=True, arrival_ms=t0 + 1033)
    a.frame(arrival_ms=t0 + 1066)
    out = sink.media()
    assert len(out) == 4
    assert all((y.sequence_number - x.sequence_number) & 0xFFFF == 1 for x, y in zip(out, out[1:]))
    assert (out[2].timestamp - out[1].timestamp) & 0xFFFFFFFF == 1000 * 90
    assert out[2].payload[6] & 0x01 == 0, "restarted on the keyframe"
    assert slot.stats.waiting_keyframe_drops == 1 and len(sink.switches) == 1


async def test_malformed_and_late_packets_are_dropped_and_counted() -> None:
    a = make_source("a", ssrc=1000, seq=100)
    b = make_source("b", ssrc=2000, seq=5000, picture_id=300)
    sink = make_slot()
    slot = sink.slot
    slot.switch_to(a.producer)
    a.frame(key=True)
    a.frame()
    # A VP8 descriptor cut short (X and I set, the PictureID missing): never sent, counted.
    a.feed(bytes([0x90, 0x80]))
    a.feed(bytes([0x90, 0xC0, 0x85]))  # a 15-bit PictureID with one byte
    assert slot.stats.malformed_drops == 2 and len(sink.media()) == 2
    a.frame()
    assert len(sink.media()) == 3
    # After a switch, a packet of the new source older than its first forwarded one is late: dropped.
    slot.switch_to(b.producer)
    b.frame(key=True)
    b.feed(vp8_payload(b.picture_id - 1, b.tl0, key=False), seq=b.seq - 5)
    assert slot.stats.late_drops == 1
    b.frame()
    out = sink.media()
    assert len(out) == 5
    steps = [(y.sequence_number - x.sequence_number) & 0xFFFF for x, y in zip(out, out[1:])]
    assert steps == [1, 3, 1, 1], "the two dropped packets look lost; the switch leaves no gap"
    # A NACK of a dropped number, or one never sent, is a miss, never an exception.
    slot.handle_nack([(out[1].sequence_number + 1) & 0xFFFF, (out[-1].sequence_number + 1) & 0xFFFF])
    assert slot.stats.retransmit_misses == 2 and slot.stats.retransmitted == 0


async def test_closing_cascades_producer_to_slot_and_slot_set_to_producers() -> None:
    a = make_source("a", ssrc=1000)
    b = make_source("b", "audio", ssrc=2000, pt=111)
    sink = make_slot()
    events: list[str] = []
    sink.slot.on("close", lambda: events.append("slot closed"))
    sink.slot.switch_to(a.producer)
    a.frame(key=True)
    a.producer.on("close", lambda: events.append("producer closed"))
    a.producer.close()
    assert a.producer.sinks == [] and sink.slot.source is None and not sink.slot.closed
    assert [e.producer_id for e, _ in sink.switches] == ["a", None]
    assert events == ["producer closed"], "the slot survives its source"
    with pytest.raises(ValueError):
        sink.slot.switch_to(a.producer)  # a closed producer cannot be put in a slot

    slot_set = SlotSet(subscriber_id="me", cname="c", send_rtp=lambda d: True, send_rtcp=lambda d: True,
                       videos=0, audios=1)
    closed: list[str] = []
    slot_set.on("close", lambda: closed.append("set"))
    for slot_id, slot in slot_set.slots.items():
        slot.on("close", lambda slot_id=slot_id: closed.append(slot_id))
    slot_set.slots["audio-0"].switch_to(b.producer)
    slot_set.slots["stage-audio"].switch_to(b.producer)
    assert len(b.producer.sinks) == 2
    slot_set.close()
    assert closed == ["stage-audio", "stage-video", "audio-0", "set"]
    assert b.producer.sinks == [] and not b.producer.closed, "closing a subscriber's slots leaves the publisher"
    slot_set.close()  # idempotent
    assert slot_set.update(slot_set.plan, {}) == []
