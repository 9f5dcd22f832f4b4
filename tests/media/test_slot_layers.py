"""Temporal layers in a slot: TL0 / TL0+1 / all per subscriber, switching down at frame boundaries and
up only at layer-sync frames or keyframes, with sequence numbers and PictureIDs closed up over what is
dropped, NACKs answered through the sequence map, late packets placed, and video paused and resumed."""

from __future__ import annotations

import pytest
from slot_helpers import Sink, Source, descriptor, make_slot, make_source, vp8_payload

from media.slot import PAUSED, TOP_LAYER

#: The L1T3 pattern (libvpx / libwebrtc): TL0, TL2, TL1, TL2; TL1 and the first TL2 depend only on TL0.
PATTERN = ((0, False), (2, True), (1, True), (2, False))


def started(layer: int = TOP_LAYER) -> tuple[Source, Sink]:
    src = make_source("a", ssrc=1000, seq=65500, picture_id=32700, tl0=250)
    sink = make_slot()
    sink.slot.set_layer(layer)
    sink.slot.switch_to(src.producer)
    src.layered(0, key=True, sync=True, packets=2)
    return src, sink


def groups(src: Source, count: int, packets: int = 1) -> None:
    for _ in range(count):
        for tid, sync in PATTERN:
            src.layered(tid, sync=sync, packets=packets)


def contiguous(values: list[int], modulo: int) -> bool:
    return all((b - a) % modulo == 1 for a, b in zip(values, values[1:]))


def sent_frames(sink: Sink) -> list[tuple[int, int, int]]:
    """(PictureID, TL0PICIDX, TID) of each sent picture's first packet."""
    out = []
    for view in sink.media():
        desc = descriptor(view)
        if desc.start_of_frame:
            out.append((desc.picture_id, desc.tl0picidx, view.payload[5] >> 6))
    return out


async def test_every_layer_goes_by_default_with_the_producer_reading_tid_once() -> None:
    src, sink = started()
    groups(src, 3)
    media = sink.media()
    assert len(media) == 2 + 12
    assert contiguous([v.sequence_number for v in media], 65536)
    assert src.producer.temporal_layers == 3
    assert sink.slot.stats.layer_drops == 0


async def test_base_layer_only_closes_up_sequence_numbers_and_picture_ids() -> None:
    src, sink = started(layer=0)
    groups(src, 5, packets=2)
    media = sink.media()
    frames = sent_frames(sink)
    assert [tid for *_, tid in frames] == [0] * 6, "the keyframe and the five TL0 pictures"
    assert contiguous([v.sequence_number for v in media], 65536), "no gap where TL1/TL2 were dropped"
    assert contiguous([pid for pid, _, _ in frames], 0x8000), "PictureIDs close up across the wrap"
    assert contiguous([tl0 for _, tl0, _ in frames], 256), "TL0PICIDX counts the TL0 pictures"
    assert sink.slot.stats.layer_drops == 5 * 3 * 2


async def test_two_layers_drop_only_tl2() -> None:
    src, sink = started(layer=1)
    groups(src, 4)
    assert [tid for *_, tid in sent_frames(sink)] == [0] + [0, 1] * 4
    assert contiguous([v.sequence_number for v in sink.media()], 65536)
    assert contiguous([pid for pid, _, _ in sent_frames(sink)], 0x8000)


async def test_going_down_mid_frame_finishes_the_frame_being_sent() -> None:
    src, sink = started()
    src.layered(0, packets=2)
    # a TL2 picture of three packets: the first goes out, then the budget says TL0 only
    pid, tl0 = src.picture_id, src.tl0
    src.feed(vp8_payload(pid, tl0, key=False, start=True, tid=2), marker=0)
    sink.slot.set_layer(0)
    src.feed(vp8_payload(pid, tl0, key=False, start=False, tid=2), marker=0)
    src.feed(vp8_payload(pid, tl0, key=False, start=False, tid=2), marker=1)
    src.ts += 6000
    src.picture_id += 1
    groups(src, 2)
    media = sink.media()
    tids = [v.payload[5] >> 6 for v in media]
    assert tids[4:7] == [2, 2, 2], "the picture in flight is complete"
    assert set(tids[7:]) == {0}, "then TL0 only"
    assert contiguous([v.sequence_number for v in media], 65536)


async def test_going_up_waits_for_a_layer_sync_frame() -> None:
    src, sink = started(layer=0)
    groups(src, 1)
    sink.slot.set_layer(TOP_LAYER)
    # TL0, then a TL2 without Y (depends on a TL1 picture the subscriber never had): dropped
    src.layered(0)
    src.layered(2, sync=False)
    src.layered(1, sync=True)  # TL1 with Y: the subscriber goes to TL1 here
    src.layered(2, sync=False)  # TL2 depending on an earlier TL2/TL1 picture: still dropped
    src.layered(0)
    src.layered(2, sync=True)  # TL2 with Y: all layers from here
    src.layered(1, sync=False)
    src.layered(2, sync=False)
    tids = [tid for *_, tid in sent_frames(sink)]
    assert tids == [0, 0, 0, 1, 0, 2, 1, 2]
    assert sink.slot.layer == TOP_LAYER
    assert contiguous([v.sequence_number for v in sink.media()], 65536)
    assert contiguous([pid for pid, _, _ in sent_frames(sink)], 0x8000)


async def test_a_keyframe_starts_every_wanted_layer() -> None:
    src, sink = started(layer=0)
    groups(src, 1)
    sink.slot.set_layer(1)
    src.layered(0, key=True)
    src.layered(2)
    src.layered(1)
    assert [tid for *_, tid in sent_frames(sink)] == [0, 0, 0, 1]


async def test_nack_after_drops_resends_the_packet_first_sent_under_that_number() -> None:
    src, sink = started(layer=0)
    groups(src, 3, packets=2)
    media = sink.media()
    lost = [media[3].sequence_number, media[-1].sequence_number]
    sink.sent.clear()
    sink.slot.handle_nack(lost)
    rtx = sink.rtx()
    assert len(rtx) == 2
    for original, view in zip((media[3], media[-1]), rtx):
        osn = int.from_bytes(view.payload[:2], "big")
        assert osn == original.sequence_number
        assert view.payload[2:] == original.payload, "PictureID and TL0PICIDX as first sent"
    assert sink.slot.stats.retransmit_misses == 0


async def test_nack_of_a_number_never_sent_or_overwritten_is_a_miss() -> None:
    src, sink = started(layer=0)
    groups(src, 1)
    top = sink.media()[-1].sequence_number
    sink.slot.handle_nack([(top + 1) & 0xFFFF, (top - 5000) & 0xFFFF])
    assert sink.slot.stats.retransmit_misses == 2
    assert not sink.rtx()


async def test_a_late_base_packet_takes_the_number_left_for_it() -> None:
    src, sink = started(layer=0)
    # a TL0 picture of two packets whose second packet arrives late, after a dropped TL2 picture
    # and the next TL0 picture
    src.tl0 += 1
    src.feed(vp8_payload(src.picture_id, src.tl0, key=False, start=True), marker=0)
    late_seq = src.seq
    src.seq += 1
    late_payload = vp8_payload(src.picture_id, src.tl0, key=False, start=False)
    src.ts += 6000
    src.picture_id += 1
    src.layered(2)  # dropped
    src.layered(0)
    src.feed(late_payload, seq=late_seq, ts=(src.ts - 18000) & 0xFFFFFFFF, marker=1)
    media = sink.media()
    stamps = [v.timestamp for v in media[-3:]]
    assert stamps[2] == stamps[0] and (stamps[1] - stamps[0]) & 0xFFFFFFFF == 12000, "late packet last"
    assert media[-1].sequence_number == (media[-3].sequence_number + 1) & 0xFFFF, "it fills its own place"
    assert contiguous(sorted(v.sequence_number for v in media), 65536), "no number twice, no gap"


async def test_paused_video_sends_nothing_and_resumes_at_a_keyframe_without_a_gap() -> None:
    src, sink = started()
    groups(src, 1)
    before = len(sink.media())
    plis = src.plis()
    asked = sink.slot.stats.source_keyframe_requests
    sink.slot.set_layer(PAUSED)
    assert sink.slot.paused and sink.slot.layer == PAUSED
    groups(src, 2)
    assert len(sink.media()) == before
    assert src.plis() == plis and sink.slot.stats.source_keyframe_requests == asked, "a paused slot asks for none"
    sink.slot.set_layer(1)
    assert sink.slot.stats.source_keyframe_requests == asked + 1, "resuming asks the source at once"
    assert src.producer.stats.keyframe_requests_throttled == 1, "(the producer spaces its PLIs 500 ms apart)"
    groups(src, 1)
    assert len(sink.media()) == before, "nothing until the keyframe"
    src.layered(0, key=True)
    groups(src, 1)
    media = sink.media()
    assert [v.payload[5] >> 6 for v in media[before:]] == [0, 0, 1]
    assert contiguous([v.sequence_number for v in media], 65536)
    assert contiguous([pid for pid, _, _ in sent_frames(sink)], 0x8000)


async def test_a_switch_while_paused_is_announced_at_once_and_started_on_resume() -> None:
    src, sink = started()
    other = make_source("b", ssrc=2000)
    sink.slot.set_layer(PAUSED)
    sink.slot.switch_to(other.producer)
    assert sink.switches[-1][0].producer_id == "b"
    assert sink.slot.source is other.producer
    other.layered(0, key=True)
    assert not [v for v in sink.media() if v.timestamp == other.ts]
    count = len(sink.media())
    sink.slot.set_layer(TOP_LAYER)
    other.layered(0, key=True)
    assert len(sink.media()) == count + 1


async def test_an_audio_slot_pauses_at_once_and_resumes_at_the_next_packet_without_a_gap() -> None:
    src = make_source("v", "audio", ssrc=3000, pt=111, seq=65534)
    sink = make_slot("audio", pt=111, rtx=None, slot_id="audio-0")
    sink.slot.switch_to(src.producer)
    for _ in range(3):
        src.audio()
    sink.slot.set_layer(PAUSED)
    for _ in range(3):
        src.audio()
    assert len(sink.media()) == 3 and sink.slot.stats.paused_drops == 3
    sink.slot.set_layer(1)
    assert sink.slot.target_layer == TOP_LAYER, "audio has no layers: resumed is all of it"
    src.audio()
    media = sink.media()
    assert len(media) == 4 and contiguous([v.sequence_number for v in media], 65536)


def test_set_layer_refuses_out_of_range() -> None:
    sink = make_slot()
    for bad in (-2, 3):
        with pytest.raises(ValueError, match="layer"):
            sink.slot.set_layer(bad)



async def test_red_on_an_audio_slot_carries_the_previous_packet_and_stops_on_request() -> None:
    from media.red import parse_red
    from slot_helpers import audio_params

    src = make_source("v", "audio", ssrc=3000, pt=111)
    sink = make_slot("audio", pt=111, rtx=None, slot_id="audio-0")
    params = audio_params(111, "5")
    sink.slot.configure(type(params)(**{**params.__dict__, "red_payload_type": 63}))
    sink.slot.switch_to(src.producer)
    src.audio()
    sink.slot.set_red(True)
    assert sink.slot.red
    src.audio()
    src.audio()
    media = sink.media()
    assert [v.payload_type for v in media] == [111, 63, 63]
    first = parse_red(media[1].payload)
    assert [b.payload_type for b in first.blocks] == [111], "no redundancy yet: the encoder just started"
    second = parse_red(media[2].payload)
    assert [b.data for b in second.blocks] == [media[0].payload, first.primary.data]
    assert second.blocks[0].timestamp_offset == 960
    sink.slot.set_red(False)
    src.audio()
    assert sink.media()[-1].payload_type == 111


async def test_a_slot_without_negotiated_red_stays_plain_opus() -> None:
    src = make_source("v", "audio", ssrc=3000, pt=111)
    sink = make_slot("audio", pt=111, rtx=None, slot_id="audio-0")
    sink.slot.switch_to(src.producer)
    sink.slot.set_red(True)
    src.audio()
    assert not sink.slot.red and sink.media()[0].payload_type == 111


async def test_red_from_a_publisher_is_forwarded_as_its_primary_block() -> None:
    from media.red import build_red
    from slot_helpers import audio_params

    params = audio_params(111, "1")
    src = make_source("v", "audio", ssrc=3000, pt=111)
    src.producer._red_pt = 63  # as negotiated with red/48000/2 (StreamParameters.red_payload_type)
    sink = make_slot("audio", pt=111, rtx=None, slot_id="audio-0")
    sink.slot.switch_to(src.producer)
    src.pt = 63
    src.feed(build_red(111, b"\xfcprimary", []))
    src.feed(b"\x01garbage")  # malformed RED: dropped and counted
    media = sink.media()
    assert [(v.payload_type, v.payload) for v in media] == [(111, b"\xfcprimary")]
    assert src.producer.stats.dropped_payload_type == 1
    assert params.red_payload_type is None


async def test_a_packet_is_resent_at_most_once_per_round_trip() -> None:
    src, sink = started(layer=0)
    groups(src, 2, packets=2)
    lost = sink.media()[3].sequence_number
    sink.sent.clear()
    sink.slot.handle_nack([lost])
    sink.slot.handle_nack([lost])  # asked again before the answer could arrive: not resent
    assert len(sink.rtx()) == 1 and sink.slot.stats.retransmits_spaced == 1
    assert sink.slot.stats.retransmitted_bytes == len(sink.sent[0])


async def test_a_retransmission_after_drops_near_the_epoch_start_takes_its_own_number() -> None:
    """A packet lost upstream comes back (the producer's NACK) after upper-layer packets were dropped:
    it is placed by the drops after it, not taken for a packet from before the epoch."""
    src, sink = started(layer=0)  # the keyframe: two packets
    src.tl0 += 1
    lost_seq, lost_ts = src.seq, src.ts
    lost = vp8_payload(src.picture_id, src.tl0, key=False, start=True)
    src.seq += 1
    src.feed(vp8_payload(src.picture_id, src.tl0, key=False, start=False), marker=1)
    src.ts += 6000
    src.picture_id += 1
    for tid, sync in PATTERN[1:]:
        src.layered(tid, sync=sync, packets=2)  # dropped: six packets, the numbers close up
    src.layered(0, packets=2)
    src.feed(lost, seq=lost_seq, ts=lost_ts, marker=0)
    media = sink.media()
    assert sink.slot.stats.late_drops == 0 and len(media) == 6
    assert media[-1].sequence_number == (media[0].sequence_number + 2) & 0xFFFF, "its own place"
    assert contiguous(sorted(v.sequence_number for v in media), 65536)
    assert descriptor(media[-1]).picture_id == descriptor(media[2]).picture_id, "its picture's PictureID"


async def test_an_upper_layer_retransmission_from_before_a_layer_change_is_placed() -> None:
    src, sink = started(layer=1)
    src.layered(0)
    # a TL1 picture of two packets, the second lost upstream
    lost_seq, lost_ts = src.seq + 1, src.ts
    lost = vp8_payload(src.picture_id, src.tl0, key=False, start=False, tid=1, sync=True)
    src.feed(vp8_payload(src.picture_id, src.tl0, key=False, start=True, tid=1, sync=True), marker=0)
    src.seq += 1
    src.ts += 6000
    src.picture_id += 1
    sink.slot.set_layer(0)  # the site's budget falls
    groups(src, 1)
    src.feed(lost, seq=lost_seq, ts=lost_ts, marker=1)
    media = sink.media()
    assert sink.slot.stats.late_drops == 0, "its picture went: it goes too"
    assert media[-1].timestamp == media[3].timestamp
    assert media[-1].sequence_number == (media[3].sequence_number + 1) & 0xFFFF
    assert contiguous(sorted(v.sequence_number for v in media), 65536)
    # a TL1 picture from after the change, lost upstream whole, late: its layer did not go there
    hole_seq, hole_ts = src.seq, src.ts
    src.seq += 1
    src.ts += 6000
    src.picture_id += 1
    src.layered(0)
    src.feed(vp8_payload(src.picture_id - 2, src.tl0, key=False, tid=1, sync=True), seq=hole_seq, ts=hole_ts)
    assert sink.slot.stats.late_drops == 1 and len(sink.media()) == len(media) + 1


async def test_an_epoch_longer_than_half_the_sequence_space_keeps_forwarding() -> None:
    src = make_source("a", ssrc=1000, seq=100)
    sink = make_slot()
    sink.slot.switch_to(src.producer)
    src.frame(key=True)
    for _ in range(0x8000 + 100):
        src.frame()
    assert sink.slot.stats.late_drops == 0 and sink.slot.stats.packets_sent == 0x8000 + 101
