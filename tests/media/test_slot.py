"""Slot: one fixed outgoing stream whose source changes without SDP (real RTP packets, no network)."""

from __future__ import annotations

import asyncio
import struct

import pytest
from slot_helpers import Sink, Source, descriptor, make_slot, make_source, vp8_payload

from media.errors import UnsupportedError
from media.rtcp import SenderReport, build_sr, parse_compound
from media.rtp_packet import RtpPacketView, build_rtp, monotonic_ms
from media.slot import Slot
from media.vp8_descriptor import Vp8Descriptor, rewrite_vp8


def seqs(views: list[RtpPacketView]) -> list[int]:
    return [v.sequence_number for v in views]


def contiguous(values: list[int]) -> bool:
    return all((b - a) & 0xFFFF == 1 for a, b in zip(values, values[1:]))


# -- VP8 descriptor ---------------------------------------------------------------------------


def test_vp8_descriptor_rewrite_keeps_everything_else() -> None:
    payload = vp8_payload(0x1234, 77, key=True, tid=2)
    desc = Vp8Descriptor.parse(payload)
    assert desc is not None
    assert (desc.picture_id, desc.picture_id_bytes, desc.tl0picidx, desc.tid) == (0x1234, 2, 77, 2)
    out = rewrite_vp8(payload, desc, 0x7FFF + 5, 300)
    new = Vp8Descriptor.parse(out)
    assert new is not None and (new.picture_id, new.tl0picidx, new.tid) == (4, 300 & 0xFF, 2)
    assert len(out) == len(payload) and out[:2] == payload[:2] and out[6:] == payload[6:]
    seven = bytes([0x90, 0xC0, 0x05, 9, 0x00]) + b"x"  # 7-bit PictureID, TL0PICIDX, no T/K
    d7 = Vp8Descriptor.parse(seven)
    assert d7 is not None and (d7.picture_id, d7.picture_id_bytes, d7.tl0picidx) == (5, 1, 9)
    out7 = rewrite_vp8(seven, d7, 130, 10)
    assert out7 == bytes([0x90, 0xC0, 130 & 0x7F, 10, 0x00]) + b"x"
    assert Vp8Descriptor.parse(bytes([0x10, 0x00])) is None  # no X: nothing to rewrite
    with pytest.raises(ValueError):
        Vp8Descriptor.parse(bytes([0x90, 0x80, 0x80]))  # 15-bit PictureID cut short


# -- video switching --------------------------------------------------------------------------


async def test_video_switch_waits_for_keyframe_and_continues_seq_ts_picture_id() -> None:
    a = make_source("a", ssrc=1000, pt=96, seq=65530, ts=4_000_000_000, picture_id=32760, tl0=250)
    b = make_source("b", ssrc=2000, pt=98, seq=300, ts=12345, picture_id=5000, tl0=10)
    sink = make_slot()
    slot = sink.slot
    t0 = monotonic_ms()
    slot.switch_to(a.producer)
    a.frame(key=False, arrival_ms=t0)  # a delta before a's keyframe: never sent
    assert not sink.sent and a.plis() == 1
    a.frame(key=True, packets=3, arrival_ms=t0 + 33)
    assert len(sink.switches) == 1
    first_switch, sent_before = sink.switches[0]
    assert first_switch.producer_id == "a" and first_switch.participant_id == "a-person" and sent_before == 1
    for i in range(4):
        a.frame(arrival_ms=t0 + 66 + 33 * i)

    slot.switch_to(b.producer)
    assert b.plis() == 1, "the new source is asked for a keyframe at once"
    assert slot.source is a.producer and slot.pending is b.producer
    b.frame(key=False, arrival_ms=t0 + 200)  # delta of the new source: dropped
    a.frame(arrival_ms=t0 + 201)  # the old source keeps going meanwhile
    count_before_cut = len(sink.media())
    last_a = sink.media()[-1]
    b.frame(key=True, packets=2, arrival_ms=t0 + 230)
    assert slot.source is b.producer and slot.pending is None
    a.frame(arrival_ms=t0 + 234)  # after the cut the old source is no longer forwarded
    b.frame(arrival_ms=t0 + 263)
    b.frame(arrival_ms=t0 + 296)

    out = sink.media()
    assert {v.ssrc for v in out} == {5555} and {v.payload_type for v in out} == {100}
    assert contiguous(seqs(out)), "no gap and no repeat across the switch"
    first_b = out[count_before_cut]
    assert first_b.sequence_number == (last_a.sequence_number + 1) & 0xFFFF
    assert first_b.payload[6] & 0x01 == 0, "the first packet of the new source is its keyframe"
    assert all(p.payload[:1] != b"" for p in out)
    b_payloads = [v for v in out[count_before_cut:]]
    assert all(v.payload.endswith(b"K" * 10) or v.payload.endswith(b"D" * 10) for v in b_payloads)
    # Timestamp continues with the wall-clock gap (230 - 201 ms at 90 kHz), monotonic.
    assert (first_b.timestamp - last_a.timestamp) & 0xFFFFFFFF == 29 * 90
    ts_steps = [(y.timestamp - x.timestamp) & 0xFFFFFFFF for x, y in zip(out, out[1:])]
    assert all(0 <= s < 0x80000000 for s in ts_steps)
    # PictureID and TL0PICIDX continue (through a's 15-bit wrap), one per picture.
    pids = [descriptor(v).picture_id for v in out if descriptor(v).start_of_frame]
    assert all((y - x) & 0x7FFF == 1 for x, y in zip(pids, pids[1:])), pids
    tl0s = [descriptor(v).tl0picidx for v in out if descriptor(v).start_of_frame]
    assert all((y - x) & 0xFF == 1 for x, y in zip(tl0s, tl0s[1:])), tl0s
    # The switch event fired right after the first packet of b went out, with that packet's stamps.
    event, sent_at = sink.switches[1]
    assert (event.producer_id, event.slot_id) == ("b", "video-0") and event.sequence > first_switch.sequence
    assert sent_at == count_before_cut + 1
    assert (event.rtp_sequence_number, event.rtp_timestamp) == (first_b.sequence_number, first_b.timestamp)
    assert slot.stats.waiting_keyframe_drops == 2
    assert a.producer.sinks == [] and b.producer.sinks != []


async def test_video_switch_from_closed_source_sends_nothing_until_keyframe() -> None:
    a = make_source("a", ssrc=1000)
    b = make_source("b", ssrc=2000, picture_id=900)
    sink = make_slot()
    sink.slot.switch_to(a.producer)
    a.frame(key=True)
    a.frame()
    sink.slot.switch_to(b.producer)
    a.producer.close()
    assert sink.slot.source is None and sink.slot.pending is b.producer
    sent = len(sink.sent)
    for _ in range(3):
        b.frame()
    assert len(sink.sent) == sent, "no delta frame of the new source"
    b.frame(key=True)
    b.frame()
    out = sink.media()
    assert contiguous(seqs(out)) and len(out) == 4
    assert [descriptor(v).picture_id for v in out] == [0, 1, 2, 3]
    # The page is told at once that the gone source is gone, then the new one at its keyframe.
    assert [e.producer_id for e, _ in sink.switches] == ["a", None, "b"]


def waiting_for_b() -> tuple[Source, Source, Sink]:
    """A slot that carries ``a`` (one keyframe sent) and switches to ``b``: it waits for b's keyframe."""
    a = make_source("a", ssrc=1000)
    b = make_source("b", ssrc=2000)
    sink = make_slot()
    sink.slot.switch_to(a.producer)
    a.frame(key=True)
    sink.slot.switch_to(b.producer)
    return a, b, sink


async def test_source_gone_while_a_switch_waits_then_emptied_tells_the_page_once() -> None:
    # A participant left while their slot waited for another's keyframe, and that other one then moved
    # elsewhere (the stage): the slot was left naming the participant who had left (CI, session 12).
    a, b, sink = waiting_for_b()
    a.producer.close()
    sink.slot.switch_to(None)
    assert sink.slot.target is None
    assert [e.producer_id for e, _ in sink.switches] == ["a", None]
    b.frame(key=True)
    assert len(sink.media()) == 1  # a's keyframe only: b is wanted nowhere now
    assert [e.producer_id for e, _ in sink.switches] == ["a", None]


async def test_source_closing_without_successor_empties_the_slot() -> None:
    a = make_source("a", ssrc=1000)
    sink = make_slot()
    sink.slot.switch_to(a.producer)
    a.frame(key=True)
    a.producer.close()
    assert [e.producer_id for e, _ in sink.switches] == ["a", None]
    sink.slot.switch_to(None)  # already empty: no second event
    assert len(sink.switches) == 2


async def test_switch_back_before_keyframe_cancels_the_pending_switch() -> None:
    a, b, sink = waiting_for_b()
    sink.slot.switch_to(a.producer)
    assert sink.slot.pending is None and sink.slot.source is a.producer
    b.frame(key=True)
    a.frame()
    assert len(sink.media()) == 2 and len(sink.switches) == 1
    assert b.producer.sinks == []


async def test_keyframe_requests_to_the_new_source_are_throttled() -> None:
    a = make_source("a", ssrc=1000)
    b = make_source("b", ssrc=2000)
    c = make_source("c", ssrc=3000)
    sink = make_slot()
    slot = sink.slot
    slot.switch_to(a.producer)
    a.frame(key=True)
    slot.switch_to(b.producer)
    slot.switch_to(c.producer)
    slot.switch_to(b.producer)
    for _ in range(30):  # deltas while waiting: the slot re-asks at most every keyframe_retry_ms
        b.frame()
    assert b.plis() == 1, "one PLI within the producer's throttle window"
    assert slot.stats.source_keyframe_requests == 4 and c.plis() == 1  # a, b, c, b
    await asyncio.sleep(0.65)
    assert b.plis() == 2, "the throttled request is sent once when the window ends"
    b.frame()  # still waiting, the retry interval has passed: asked again (throttled upstream)
    assert slot.stats.source_keyframe_requests == 5
    b.frame(key=True)
    assert slot.source is b.producer


async def test_subscriber_pli_goes_to_the_awaited_source_else_the_current() -> None:
    a = make_source("a", ssrc=1000)
    b = make_source("b", ssrc=2000)
    sink = make_slot()
    sink.slot.switch_to(a.producer)
    a.frame(key=True)
    await asyncio.sleep(0.55)
    sink.slot.handle_keyframe_request()
    assert a.plis() == 2
    sink.slot.switch_to(b.producer)
    await asyncio.sleep(0.55)
    sink.slot.handle_keyframe_request()
    assert b.plis() == 2 and a.plis() == 2
    assert sink.slot.stats.keyframe_requests_received == 2


async def test_paused_source_restarts_on_a_keyframe_with_continuous_numbers() -> None:
    a = make_source("a", ssrc=1000)
    sink = make_slot()
    sink.slot.switch_to(a.producer)
    t0 = monotonic_ms()
    a.frame(key=True, arrival_ms=t0)
    a.producer.pause()
    a.producer.resume()
    a.seq += 50
    a.ts += 90000
    a.frame(arrival_ms=t0 + 1000)  # a delta after the pause: the receiver could not decode it
    a.frame(key=True, arrival_ms=t0 + 1033)
    out = sink.media()
    assert len(out) == 2 and contiguous(seqs(out))
    assert (out[1].timestamp - out[0].timestamp) & 0xFFFFFFFF == 1033 * 90
    assert len(sink.switches) == 1, "a pause is not a switch"


async def test_slot_refuses_a_producer_of_another_kind_or_codec() -> None:
    sink = make_slot()
    with pytest.raises(ValueError):
        sink.slot.switch_to(make_source("x", "audio", ssrc=9, pt=111).producer)
    h264 = make_source("h", ssrc=10)
    object.__setattr__(h264.producer.parameters.codec, "mimeType", "video/H264")
    with pytest.raises(UnsupportedError):
        sink.slot.switch_to(h264.producer)


# -- audio ------------------------------------------------------------------------------------


async def test_audio_switches_at_once_with_continuous_numbers() -> None:
    a = make_source("a", "audio", ssrc=1000, pt=111, seq=10, ts=1000)
    b = make_source("b", "audio", ssrc=2000, pt=109, seq=40000, ts=77777)
    sink = make_slot("audio", pt=111, rtx=None, slot_id="stage-audio")
    slot = sink.slot
    t0 = monotonic_ms()
    slot.switch_to(a.producer)
    for i in range(5):
        a.audio(arrival_ms=t0 + 20 * i, level=0x80 | 30)
    slot.switch_to(b.producer)
    a.audio(arrival_ms=t0 + 84)  # the old voice stops at once
    b.audio(arrival_ms=t0 + 85, level=0x80 | 12)  # 5 ms after the last packet sent
    b.audio(arrival_ms=t0 + 105)
    out = sink.media()
    assert len(out) == 7 and contiguous(seqs(out))
    assert {v.payload_type for v in out} == {111} and {v.ssrc for v in out} == {5555}
    # The new voice starts one audio frame (20 ms) after the last packet, never overlapping it.
    assert (out[5].timestamp - out[4].timestamp) & 0xFFFFFFFF == 960
    assert (out[6].timestamp - out[5].timestamp) & 0xFFFFFFFF == 960
    assert out[5].extension(2) == bytes([0x80 | 12]), "audio level copied under the slot's id"
    assert out[5].extension(1) == b"5", "the slot's MID"
    # An audio switch is announced at once (no RTP timestamp): before the new voice's first packet.
    assert [(e.producer_id, n, e.rtp_timestamp) for e, n in sink.switches] == [("a", 0, -1), ("b", 5, -1)]
    assert not a.upstream and not b.upstream, "no PLI for audio"


# -- NACK, SR ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rtx_pt", [101, None])
async def test_nack_of_a_slot_seq_resends_the_right_source_packet(rtx_pt: int | None) -> None:
    a = make_source("a", ssrc=1000, seq=500, picture_id=10)
    b = make_source("b", ssrc=2000, seq=9000, picture_id=20000)
    sink = make_slot(rtx=rtx_pt)
    slot = sink.slot
    slot.switch_to(a.producer)
    a.frame(key=True)
    a.frame()
    slot.switch_to(b.producer)
    b.frame(key=True, packets=2)
    b.frame()
    out = sink.media()
    assert len(out) == 5
    sink.sent.clear()
    lost = [out[1].sequence_number, out[3].sequence_number, (out[4].sequence_number + 5) & 0xFFFF]
    slot.handle_nack(lost)
    resent = sink.rtx() if rtx_pt is not None else sink.media()
    assert len(resent) == 2 and slot.stats.retransmit_misses == 1
    for original, again in zip((out[1], out[3]), resent):
        if rtx_pt is not None:
            assert again.payload_type == rtx_pt
            assert struct.unpack("!H", again.payload[:2])[0] == original.sequence_number
            body = again.payload[2:]
        else:
            assert again.sequence_number == original.sequence_number and again.payload_type == 100
            body = again.payload
        assert body == original.payload, "same bytes as first sent, PictureID rewritten alike"
        assert again.timestamp == original.timestamp


async def test_sender_report_uses_the_source_mapping_in_slot_time_and_slot_counts() -> None:
    a = make_source("a", ssrc=1000, ts=1000)
    b = make_source("b", ssrc=2000, ts=500_000)
    sink = make_slot()
    slot = sink.slot
    assert slot.sender_report() is None
    slot.switch_to(a.producer)
    a.frame(key=True)
    sr = next(p for p in parse_compound(slot.sender_report() or b"") if isinstance(p, SenderReport))
    first = sink.media()[0]
    # No SR from the publisher yet: the server's clock against what was sent.
    assert sr.ssrc == 5555 and (sr.rtp_timestamp - first.timestamp) & 0xFFFFFFFF < 90 * 50
    slot.switch_to(b.producer)
    b.producer.handle_sender_report(parse_compound(build_sr(2000, 123 << 32, 490_000, 1, 1))[0])  # type: ignore[arg-type]
    b.frame(key=True)
    b_first = sink.media()[-1]
    reports = [p for d in sink.rtcp for p in parse_compound(d) if isinstance(p, SenderReport)]
    assert reports, "an SR with the new mapping goes out when the new source starts"
    sr = reports[-1]
    assert sr.ssrc == 5555 and sr.ntp_timestamp == 123 << 32
    # rtp 490000 is 10000 ticks before b's first packet (500000), in the slot's timeline.
    assert (b_first.timestamp - sr.rtp_timestamp) & 0xFFFFFFFF == 10000
    b.frame()
    sr = next(p for p in parse_compound(slot.sender_report() or b"") if isinstance(p, SenderReport))
    assert sr.packet_count == 3 and sr.octet_count == slot.stats.payload_bytes_sent


async def test_slot_drops_packets_until_configured_and_closes_cleanly() -> None:
    a = make_source("a", ssrc=1000)
    sent: list[bytes] = []
    slot = Slot(slot_id="video-1", kind="video", ssrc=1, rtx_ssrc=2, cname="c", stream_id="video-1",
                send_rtp=lambda d: sent.append(d) or True, send_rtcp=lambda d: True)
    slot.switch_to(a.producer)
    a.frame(key=True)
    assert not sent and not slot.ready
    closed: list[bool] = []
    slot.on("close", lambda: closed.append(True))
    slot.close()
    assert closed and a.producer.sinks == []
    a.producer.handle_rtp(RtpPacketView.parse(build_rtp(payload_type=96, sequence_number=1, timestamp=1, ssrc=1000,
                                                        payload=vp8_payload(1, 1, key=True))))
    assert not sent


def part(src: Source, *, start: bool, marker: int) -> None:
    """One packet of ``src``'s current (delta) picture, without moving on to the next picture."""
    src.feed(vp8_payload(src.picture_id, src.tl0, key=False, start=start), marker=marker)


def switch_mid_frame(key_packets: int) -> tuple[Source, Source, Sink]:
    """A slot carrying ``a`` (its keyframe of ``key_packets`` sent) is switched to ``b``, and then the
    first packet of ``a``'s next picture goes out: a frame of the old source is in flight."""
    a = make_source("a", ssrc=1000, pt=96, seq=100, ts=90_000)
    b = make_source("b", ssrc=2000, pt=98, seq=500, ts=5_000)
    sink = make_slot()
    sink.slot.switch_to(a.producer)
    a.frame(key=True, packets=key_packets)
    sink.slot.switch_to(b.producer)
    part(a, start=True, marker=0)
    return a, b, sink


async def test_keyframe_arriving_mid_frame_waits_for_the_old_frame_to_end() -> None:
    """The new source's keyframe can arrive while a frame of the old source is half sent (two
    publishers' packets interleave on the server). Cutting over then would hand the subscriber's
    decoder a frame cut short: aiortc's jitter buffer calls a frame complete when the next
    timestamp starts, and libvpx rejects it ("Invalid data"). The keyframe waits for the old
    frame's last packet instead."""
    a, b, sink = switch_mid_frame(key_packets=2)
    slot = sink.slot
    # a's next frame: two of its three packets, then b's keyframe (three packets), then a's last packet
    part(a, start=False, marker=0)
    b.frame(key=True, packets=3)
    assert slot.source is a.producer, "the cut waits for the old frame to end"
    part(a, start=False, marker=1)
    assert slot.source is b.producer and slot.pending is None
    a.ts += 3000
    a.frame()  # no longer forwarded
    b.frame()
    out = sink.media()
    assert contiguous(seqs(out))
    frames: list[tuple[int, list[int]]] = []
    for view in out:
        if frames and frames[-1][0] == view.timestamp:
            frames[-1][1].append(view.marker)
        else:
            frames.append((view.timestamp, [view.marker]))
    assert [markers for _, markers in frames] == [[0, 1], [0, 0, 1], [0, 0, 1], [1]], "every frame ends with its marker"
    assert len(sink.switches) == 2 and sink.switches[1][0].producer_id == "b"


async def test_old_frame_end_lost_upstream_cuts_over_at_its_next_frame() -> None:
    """If the old frame's last packet never comes (lost upstream), its next frame starting ends the
    wait: the queued keyframe goes out then, and the old source's new frame does not."""
    a, b, sink = switch_mid_frame(key_packets=1)
    slot = sink.slot
    b.frame(key=True, packets=2)
    a.seq += 1  # the old frame's marker packet is lost upstream
    a.ts += 3000
    assert slot.source is a.producer
    a.frame()  # a's next frame: the cut happens now, and this frame is not sent
    assert slot.source is b.producer
    out = sink.media()
    assert contiguous(seqs(out))
    assert [v.ssrc for v in out] == [slot.ssrc] * 4
    assert [v.marker for v in out] == [1, 0, 0, 1]


async def test_switch_back_while_the_keyframe_waits_drops_it() -> None:
    a, b, sink = switch_mid_frame(key_packets=1)
    slot = sink.slot
    b.frame(key=True)
    slot.switch_to(a.producer)  # back before the cut
    part(a, start=False, marker=1)
    a.ts += 3000
    a.frame()
    b.frame(key=True)
    out = sink.media()
    assert slot.source is a.producer and slot.pending is None
    assert contiguous(seqs(out)) and [v.marker for v in out] == [1, 0, 1, 1]
    assert len(sink.switches) == 1


@pytest.mark.parametrize("with_tl0", [True, False])
async def test_picture_id_continues_in_both_common_descriptor_forms(with_tl0: bool) -> None:
    """libwebrtc's descriptor carries TL0PICIDX after the 15-bit PictureID, aiortc's does not: both
    are rewritten on the fast path across a switch, and the result is what the generic parser and
    rewriter would write (the rest of the payload untouched)."""
    a = make_source("a", ssrc=1000, pt=96, seq=100, ts=90_000, picture_id=700, tl0=40)
    b = make_source("b", ssrc=2000, pt=98, seq=500, ts=5_000, picture_id=20000, tl0=200)

    def payload(src, key: bool) -> bytes:  # type: ignore[no-untyped-def]
        if with_tl0:
            return vp8_payload(src.picture_id, src.tl0, key=key)
        return bytes([0x90, 0x80]) + struct.pack("!H", 0x8000 | src.picture_id) + bytes([0x00 if key else 0x01]) + b"P" * 40

    def frame(src, key: bool = False) -> None:  # type: ignore[no-untyped-def]
        src.feed(payload(src, key))
        src.ts += 3000
        src.picture_id = (src.picture_id + 1) & 0x7FFF
        src.tl0 = (src.tl0 + 1) & 0xFF

    sink = make_slot()
    slot = sink.slot
    slot.switch_to(a.producer)
    frame(a, key=True)
    frame(a)
    slot.switch_to(b.producer)
    frame(b, key=True)
    frame(b)
    frame(b)
    out = sink.media()
    descs = [descriptor(v) for v in out]
    assert [d.picture_id for d in descs] == [700, 701, 702, 703, 704]
    if with_tl0:
        assert [d.tl0picidx for d in descs] == [40, 41, 42, 43, 44]
    else:
        assert all(d.tl0picidx == -1 for d in descs)
    expected_tail = payload(b, False)[4 + int(with_tl0):]
    assert out[-1].payload[4 + int(with_tl0):] == expected_tail
