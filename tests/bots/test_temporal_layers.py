"""Temporal layers on the wire: the bots' RFC 7741 descriptors (TL0PICIDX, TID, Y) as built, as
sent (retransmissions included) and as the SFU's and the bots' own parsers read them."""

from __future__ import annotations

import av
import pytest

from conftest import LOOPBACK, Closer, wait_for

from bots.inprocess import connect_publisher, connect_subscriber
from bots.media_files import PreEncodedMedia
from bots.picture import read_index
from bots.publisher import Publisher
from bots.receive_stats import StreamCounter, vp8_layer_fields
from bots.report import BotReport, PublishReport, merge_publish
from bots.rtp_writer import VP8_DESCRIPTOR_SIZE, VP8_TEMPORAL_DESCRIPTOR_SIZE, split_vp8_frame, vp8_descriptors
from bots.sampling import vp8_descriptor
from bots.stamp import STAMP_SIZE, pack_stamp, read_stamp
from bots.subscriber import Subscriber
from media import aiortc_seams as seams
from media.keyframe import vp8_is_keyframe
from media.rtp_packet import RtpPacketView
from media.vp8_descriptor import Vp8Descriptor

# -- descriptors ------------------------------------------------------------------------------


def test_single_layer_descriptors_keep_the_old_form() -> None:
    first, rest = vp8_descriptors(0x1234, 2)
    assert first == bytes((0x90, 0x80, 0x80 | 0x12, 0x34)) and rest == bytes((0x80, 0x80, 0x92, 0x34))
    assert len(first) == VP8_DESCRIPTOR_SIZE
    assert vp8_descriptors(0x8001, 1) == [bytes((0x90, 0x80, 0x80, 0x01))]  # PictureID wraps at 2**15


def test_temporal_descriptors_carry_tl0picidx_tid_and_layer_sync() -> None:
    first, rest, last = vp8_descriptors(0x0203, 3, tl0picidx=0xAB, tid=2, layer_sync=True)
    # X (I, L, T); M + 15-bit PictureID; TL0PICIDX; TID=2, Y=1, KEYIDX=0.
    assert first == bytes((0x90, 0xE0, 0x82, 0x03, 0xAB, 0xA0))
    assert rest == last == bytes((0x80,)) + first[1:]
    assert len(first) == VP8_TEMPORAL_DESCRIPTOR_SIZE
    assert vp8_descriptors(7, 1, tl0picidx=0, tid=1)[0][5] == 0x40  # TID 1, Y 0
    assert vp8_descriptors(7, 1, tl0picidx=255, tid=0, layer_sync=True)[0][4:] == bytes((0xFF, 0x20))


@pytest.mark.parametrize(("tid", "sync"), [(0, True), (0, False), (1, True), (2, False), (3, True)])
def test_parsers_read_the_temporal_descriptor(tid: int, sync: bool) -> None:
    keyframe_header = b"\x10\x02\x00\x9d\x01\x2a"  # P bit clear: a keyframe's first bytes
    payload = vp8_descriptors(0x7FFF, 1, tl0picidx=200, tid=tid, layer_sync=sync)[0] + keyframe_header
    desc = Vp8Descriptor.parse(payload)
    assert desc is not None
    assert (desc.picture_id, desc.picture_id_bytes, desc.tl0picidx, desc.tl0_pos, desc.tid) == (0x7FFF, 2, 200, 4, tid)
    assert desc.start_of_frame
    assert vp8_descriptor(payload) == (VP8_TEMPORAL_DESCRIPTOR_SIZE, True, True)
    assert vp8_is_keyframe(payload)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"count": 0}, "a frame needs at least one packet, not 0"),
    ({"tl0picidx": 256}, "TL0PICIDX must be 0..255, not 256"),
    ({"tl0picidx": -1}, "TL0PICIDX must be 0..255, not -1"),
    ({"tl0picidx": 0, "tid": 4}, "TID must be 0..3, not 4"),
])
def test_descriptor_arguments_are_checked(kwargs: dict[str, int], message: str) -> None:
    arguments = {"picture_id": 1, "count": 1, **kwargs}
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        vp8_descriptors(**arguments)


def test_frames_are_split_for_the_longer_descriptor() -> None:
    frame = bytes(range(256)) * 20  # 5120 bytes
    for size in (VP8_DESCRIPTOR_SIZE, VP8_TEMPORAL_DESCRIPTOR_SIZE):
        pieces = split_vp8_frame(frame, 1150, size)
        assert b"".join(pieces) == frame
        assert max(map(len, pieces)) + size <= 1150 and len(pieces[-1]) + size + STAMP_SIZE <= 1150
    with pytest.raises(ValueError, match="leaves no room"):
        split_vp8_frame(frame, 30, VP8_TEMPORAL_DESCRIPTOR_SIZE)


# -- the publisher on the wire ----------------------------------------------------------------


def _in_order(views: list[RtpPacketView]) -> list[RtpPacketView]:
    """``views`` by sequence number (the first packets may reach the server's tap out of order)."""
    base = views[0].sequence_number
    return sorted(views, key=lambda v: (v.sequence_number - base + 0x8000) & 0xFFFF)


def _frames(views: list[RtpPacketView]) -> list[tuple[bytes, Vp8Descriptor, int, int]]:
    """(frame bytes, descriptor, stamped counter, stamped loop index) per complete frame, in order."""
    frames = []
    parts: list[bytes] = []
    for view in views:
        size, start, _ = vp8_descriptor(view.payload)
        if start:
            parts = []
        parts.append(view.payload[size:])
        if view.marker:
            stamp = read_stamp(view.payload)
            desc = Vp8Descriptor.parse(view.payload)
            assert stamp is not None and desc is not None
            frames.append((b"".join(parts), desc, stamp.counter, stamp.index))
    return frames


async def test_published_layers_descriptors_rtx_and_tl0_decoding(sfu: Closer, media: PreEncodedMedia) -> None:
    publisher = sfu.add(Publisher(media, audio=False, bind_addresses=LOOPBACK))
    video = (await connect_publisher(sfu.router, "alice", publisher))["video"]
    transport = next(t for t in sfu.router.transports.values() if t.direction == "send")
    dtls = seams.dtls_transports(transport.peer_connection)[0]
    rtp: list[RtpPacketView] = []
    seams.install_rtp_filter(dtls, lambda d: rtp.append(RtpPacketView.parse(d)) or True)
    await wait_for(lambda: publisher.stats.video_frames >= 30, timeout=10)

    views = _in_order([v for v in rtp if v.ssrc == video.ssrc])
    first_start = next(i for i, v in enumerate(views) if vp8_descriptor(v.payload)[1])
    frames = _frames(views[first_start:])
    assert len(frames) >= 20
    for view in views:  # every packet of a frame carries the same temporal fields
        assert len(view.payload) <= 1150 and view.payload[1] == 0xE0
    tl0s = []
    for _, desc, counter, index in frames:
        assert desc.picture_id == counter & 0x7FFF
        assert desc.tid == media.temporal_ids[index]
        tl0s.append((desc.tl0picidx, desc.tid))
    # TL0PICIDX moves on (mod 256) with each TL0 frame only; the others carry their TL0's.
    for (previous, _), (current, tid) in zip(tl0s, tl0s[1:]):
        assert current == ((previous + 1) & 0xFF if tid == 0 else previous)
    # Layer sync bit as recorded for the loop frame.
    for view in views[first_start:]:
        stamp = read_stamp(view.payload) if view.marker else None
        if stamp is not None:
            assert bool(view.payload[5] & 0x20) == media.layer_sync[stamp.index]
    sent = publisher.stats.frames_per_tid
    assert sent[0] + sent[1] + sent[2] == publisher.stats.video_frames and sent[3] == 0 and sent[2] >= sent[0]

    # What a subscriber gets when the server forwards TL0 only (or TL0 and TL1) decodes.
    start = next(i for i, (data, *_) in enumerate(frames) if not data[0] & 1)  # from a keyframe
    for top in (0, 1):
        chosen = [(data, index) for data, desc, _, index in frames[start:] if desc.tid <= top]
        decoder = av.CodecContext.create("libvpx", "r")
        shown = [read_index(f) for data, _ in chosen for f in decoder.decode(av.Packet(data))]
        assert shown == [index for _, index in chosen]

    # Retransmissions carry the very descriptors (and payloads) of the originals.
    stream = publisher._streams["video"]
    assert stream.rtx is not None
    wanted = [v.sequence_number for v in views[-6:]]
    publisher._retransmit(stream, wanted)
    await wait_for(lambda: sum(v.ssrc == stream.rtx.ssrc for v in rtp) >= len(wanted), timeout=5)
    by_seq = {v.sequence_number: v.payload for v in views}
    for view in [v for v in rtp if v.ssrc == stream.rtx.ssrc]:
        view.unwrap_rtx(video.payload_type, video.ssrc)
        assert view.payload == by_seq[view.sequence_number]
        assert view.payload[1] == 0xE0 and Vp8Descriptor.parse(view.payload) is not None


# -- the receiving bot: layers not forwarded are not losses ------------------------------------

PATTERN = (0, 2, 1, 2)


def _receive(frames: list[tuple[int, int, int]], arrival_ms: float = 1000 / 15) -> StreamCounter:
    """A lean StreamCounter fed one-packet frames (sender counter, PictureID, TID) at 15 fps
    sender time; the arrival follows the sender's counter (``arrival_ms`` per counted frame)."""
    counter = StreamCounter("video", "1", 90000, 1 / 15)
    base = 10_000_000
    for seq, (count, picture_id, tid) in enumerate(frames):
        arrival = base + round(count * arrival_ms * 1000)
        payload = (vp8_descriptors(picture_id, 1, tl0picidx=count // 4 & 0xFF, tid=tid)[0] + b"vp8"
                   + pack_stamp(count, count % 60, 0, arrival - 3000))
        counter.on_packet(seq, 6000 * count, 1, payload, arrival)
    return counter


def test_layer_fields_of_descriptors() -> None:
    assert vp8_layer_fields(vp8_descriptors(0x1234, 1, tl0picidx=9, tid=2)[0]) == (0x1234, 0x8000, 2)
    assert vp8_layer_fields(vp8_descriptors(0x1234, 1)[0]) == (0x1234, 0x8000, -1)
    assert vp8_layer_fields(bytes((0x90, 0x80, 0x05))) == (5, 0x80, -1)  # 7-bit PictureID
    assert vp8_layer_fields(bytes((0x90, 0x20, 0x80))) == (-1, 0, 2)  # T only
    assert vp8_layer_fields(b"\x10") == (-1, 0, -1) and vp8_layer_fields(bytes((0x90, 0x80))) == (-1, 0, -1)


def test_full_rate_layered_stream_misses_nothing() -> None:
    report = _receive([(n, n, PATTERN[n % 4]) for n in range(40)]).report(full_mode=False)
    assert report.frames_received == 40 and report.frames_per_tid == [10, 10, 20, 0]
    assert report.frames_missing == 0 and report.frames_not_forwarded == 0 and report.freezes == 0
    assert report.frame_rate == 15.0


def test_tl0_only_frames_are_not_forwarded_not_missing_and_no_freeze() -> None:
    """The server forwards TL0 only (3.75 fps) and renumbers PictureIDs: 3 of 4 frames not
    forwarded, none missing, and the 267 ms between frames is no freeze."""
    counter = _receive([(n, 1000 + n // 4, 0) for n in range(0, 80, 4)])
    report = counter.report(full_mode=False)
    assert report.frames_received == 20 and report.frames_per_tid == [20, 0, 0, 0]
    assert report.frames_not_forwarded == 19 * 3 and report.frames_missing == 0
    assert report.freezes == 0 and report.frame_rate == 3.75
    assert "per TID 20/0/0/0, not forwarded 57, 3.8 fps" in BotReport("b", "lean", streams=[report]).summary()


def test_real_loss_is_told_apart_from_layers_not_forwarded() -> None:
    """TL0+TL1 forwarded (PictureIDs renumbered over them); one TL1 frame (counter 10) is lost on
    the way: one frame missing, the TL2 frames not forwarded; a lost TL0 frame in a TL0-only run
    is missing too, and a longer run of losses is a freeze."""
    forwarded = [n for n in range(0, 40) if PATTERN[n % 4] <= 1]
    frames = [(n, i, PATTERN[n % 4]) for i, n in enumerate(forwarded) if n != 10]
    report = _receive(frames).report(full_mode=False)
    assert report.frames_per_tid == [10, 9, 0, 0]
    assert report.frames_missing == 1 and report.frames_not_forwarded == 19
    assert report.freezes == 0

    tl0 = [n for n in range(0, 80, 4)]
    frames = [(n, i, 0) for i, n in enumerate(tl0) if n not in (20, 24, 28)]  # 3 TL0 frames lost: 1.07 s
    report = _receive(frames).report(full_mode=False)
    assert report.frames_missing == 3 and report.frames_not_forwarded == 15 * 3 + 12
    assert report.freezes == 1


def test_without_usable_picture_ids_every_gap_is_missing() -> None:
    """A stream without PictureIDs (or a constant one) keeps the old meaning: every counter gap is
    a missing frame."""
    report = _receive([(n, 7, 0) for n in (0, 1, 2, 6)]).report(full_mode=False)
    assert report.frames_missing == 3 and report.frames_not_forwarded == 0


def _stop_budget(transport: object) -> None:
    """Stop the receiving site's bandwidth budget (media/site_budget.py), which sets its slots'
    layers itself, so that the test alone decides what is forwarded."""
    budget = getattr(transport, "budget", None)
    if budget is not None:
        budget.close()


async def test_full_rate_subscribers_get_every_layer(sfu: Closer, media: PreEncodedMedia) -> None:
    """Through the SFU at full rate (the site's bandwidth budget stopped: it may take layers away
    while its estimate starts low): frames of each TID in the 1:1:2 pattern, none missing or not
    forwarded, about 15 frames per second."""
    publisher = sfu.add(Publisher(media, audio=False, bind_addresses=LOOPBACK))
    await connect_publisher(sfu.router, "alice", publisher)
    lean = sfu.add(Subscriber(lean=True, bind_addresses=LOOPBACK, videos=0, audios=0))
    _stop_budget(await connect_subscriber(sfu.router, "carol", lean))

    def stage() -> object:
        return next((r for r in lean.reports() if r.slot_id == "stage-video"), None)

    await wait_for(lambda: stage() is not None and stage().frames_received >= 40, timeout=15)
    report = stage()
    assert report.frames_missing <= report.lost_packets <= 2 and report.frames_not_forwarded == 0
    tl0, tl1, tl2, tl3 = report.frames_per_tid
    assert tl3 == 0 and abs(tl0 - tl1) <= 1 and abs(tl2 - 2 * tl0) <= 2
    assert report.frame_rate is not None and 10 < report.frame_rate < 20


def test_publish_reports_merge_frames_per_tid() -> None:
    merged = merge_publish([PublishReport(video_frames=8, frames_per_tid=[2, 2, 4, 0]),
                            PublishReport(video_frames=5, frames_per_tid=[2, 1, 2, 0])])
    assert merged is not None and merged.video_frames == 13 and merged.frames_per_tid == [4, 3, 6, 0]
    assert "(0 packets, 0 keyframes, per TID 4/3/6)" in BotReport("b", "lean", publish=merged).summary()


@pytest.mark.parametrize("lean_mode", [True, False], ids=["lean", "full"])
async def test_layers_the_sfu_does_not_forward_are_not_counted_lost(sfu: Closer, media: PreEncodedMedia,
                                                                    lean_mode: bool) -> None:
    """The SFU forwards TL0 only, then TL0+TL1, then all layers to one subscriber (its slot's
    ``set_layer``; the site's bandwidth budget is stopped so that it does not choose instead): the
    bot counts the frames not forwarded apart, none missing, no freeze (lean: from arrivals; full:
    from decoded pictures, 267 ms apart at TL0 only), and decodes what it gets."""
    publisher = sfu.add(Publisher(media, audio=False, bind_addresses=LOOPBACK))
    await connect_publisher(sfu.router, "alice", publisher)
    lean = sfu.add(Subscriber(lean=lean_mode, bind_addresses=LOOPBACK, videos=0, audios=0,
                              video_sample_interval_s=0.5))
    transport = await connect_subscriber(sfu.router, "carol", lean)
    _stop_budget(transport)
    slot = transport.slot_set.slots["stage-video"]

    def stage() -> object:
        return next((r for r in lean.reports() if r.slot_id == "stage-video"), None)

    await wait_for(lambda: stage() is not None and stage().frames_received >= 10, timeout=15)
    steps = []
    for layer in (0, 1, 2):
        slot.set_layer(layer)
        before = stage()
        await wait_for(lambda: stage().frames_received >= before.frames_received + 8, timeout=10)
        steps.append((before, stage()))
    report = stage()
    # Frames are missing only when packets were lost (none on a quiet loopback; a stray one on a
    # loaded 2-core machine), and a freeze is one (without the allowance: 8 at TL0 alone).
    assert report.frames_missing <= report.lost_packets <= 2 and report.freezes <= 1, report
    assert report.decode_errors == 0 and report.index_mismatches == 0 and report.decoded_frames > 0
    deltas = []
    for before, after in steps:
        received = [a - b for a, b in zip(after.frames_per_tid, before.frames_per_tid)]
        not_forwarded = after.frames_not_forwarded - before.frames_not_forwarded
        missing = after.frames_missing - before.frames_missing
        # Every frame the publisher counted meanwhile was received, not forwarded or (rarely) missing.
        assert sum(received) + not_forwarded + missing == after.last_counter - before.last_counter, (before, after)
        deltas.append((received, not_forwarded))
    (tl0_only, skipped0), (tl01, skipped1), (every, skipped2) = deltas
    # (A frame being sent when the layer changes is finished: at most one of a dropped layer.)
    assert tl0_only[0] >= 8 and tl0_only[1] + tl0_only[2] <= 1 and skipped0 >= 3 * (tl0_only[0] - 1)
    assert tl01[0] >= 3 and tl01[1] >= 3 and tl01[2] <= 1 and skipped1 >= tl01[0] + tl01[1] - 2
    assert every[2] >= 3 and skipped2 <= 3  # up at the next layer-sync frame
