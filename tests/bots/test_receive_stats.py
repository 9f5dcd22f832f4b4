"""StreamCounter: loss, recovery, duplicates, missing frames, freezes, latency (synthetic input)."""

from __future__ import annotations

from bots.report import percentile
from bots.stamp import pack_stamp, source_tag
from bots.receive_stats import SETTLE_US, StreamCounter


def audio_payload(counter: int, send_us: int) -> bytes:
    return b"\x7b\x41\x18opus" + pack_stamp(counter, counter % 100, 0, send_us)


def test_loss_recovery_duplicates_and_wrap() -> None:
    c = StreamCounter("audio", "0", 48000)
    t = 1_000_000
    seqs = [65533, 65534, 65535, 0, 2, 3, 3, 1, 6]  # wraps; 1 late (recovered); 3 duplicated; 4, 5 lost
    for i, seq in enumerate(seqs):
        c.on_packet(seq, 960 * i, 0, audio_payload(i, t + 20_000 * i - 5_000), t + 20_000 * i)
    assert c.packets == 8 and c.expected == 10 and c.lost == 2
    report = c.report(full_mode=False)
    assert report.loss_percent == 20.0 and report.lost_packets == 2
    assert report.latency_ms_p50 == 5.0


def test_frames_missing_and_freezes_from_arrivals() -> None:
    c = StreamCounter("video", "1", 90000, 1 / 15)
    send = 10_000_000
    arrivals = [0, 67, 133, 200, 600, 667]  # ms: one 400 ms gap
    counters = [0, 1, 2, 3, 9, 10]  # frames 4..8 never arrived
    for i, (ms, counter) in enumerate(zip(arrivals, counters)):
        payload = b"\x80\x80\x80\x01vp8" + pack_stamp(counter, counter, 0, send + ms * 1000 - 3000)
        c.on_packet(i, 6000 * counter, 1, payload, send + ms * 1000)
    report = c.report(full_mode=False)
    assert report.frames_received == 6 and report.frames_missing == 5
    assert report.freezes == 1 and report.freeze_ms == 400.0
    assert report.last_counter == 10 and report.latency_ms_p99 == 3.0


def test_unstamped_packets_are_counted() -> None:
    c = StreamCounter("audio", "0", 48000)
    c.on_packet(1, 0, 0, b"\x78plain opus", 1)
    assert c.report(full_mode=True).unstamped_packets == 1


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3, 1, 2, 4], 50) == 2 and percentile(list(range(1, 101)), 99) == 99


def video_frame(counter: int, source: str, send_us: int) -> bytes:
    return b"\x80\x80\x80\x01vp8" + pack_stamp(counter, counter, 0, send_us, source_tag(source))


def test_slot_frames_are_checked_against_the_participant_named_at_their_timestamp() -> None:
    """A slot carries alice, then bob from RTP timestamp 30000 on (wrapping past 2**32): each frame
    must carry the stamp of the participant the slot map names at its timestamp, once settled."""
    c = StreamCounter("video", "1", 90000, 1 / 15, slot_id="stage-video")
    base = 0xFFFFFFFF - 20000  # the slot's timestamps wrap during the test
    t = 5_000_000
    assert c.apply_slot({"slot_id": "stage-video", "sequence": 3, "participant_id": "alice", "producer_id": "a",
                         "rtp_timestamp": base, "rtp_sequence_number": 1})
    frames = [(0, "alice"), (1, "alice"), (2, "alice"), (3, "bob"), (4, "bob"), (5, "bob")]
    for i, (n, who) in enumerate(frames):
        ts = (base + 6000 * n) & 0xFFFFFFFF
        c.on_packet(i, ts, 1, video_frame(100 * (who == "bob") + n, who, t), t + 1000 * i)
    # bob's switch event arrives after his first frame (signaling is slower than media): no verdict yet.
    assert c.identity.checked == 0
    assert not c.apply_slot({"slot_id": "stage-video", "sequence": 2, "participant_id": "carol", "producer_id": "c",
                             "rtp_timestamp": base, "rtp_sequence_number": 0})  # older than the last applied
    assert c.apply_slot({"slot_id": "stage-video", "sequence": 4, "participant_id": "bob", "producer_id": "b",
                         "rtp_timestamp": (base + 18000) & 0xFFFFFFFF, "rtp_sequence_number": 4})
    c.settle(t + SETTLE_US + 10_000)
    assert (c.identity.checked, c.identity.mismatches, c.identity.unknown) == (6, 0, 0)
    # A frame of bob's stamped as carol: a mismatch; a frame earlier than any switch: unknown.
    c.on_packet(6, (base + 36000) & 0xFFFFFFFF, 1, video_frame(106, "carol", t), t)
    c.on_packet(7, (base - 6000) & 0xFFFFFFFF, 1, video_frame(107, "bob", t), t)
    report = c.report(full_mode=False)
    assert report.identity_mismatches == 1 and report.identity_unknown == 1 and report.identity_checked == 7
    assert report.participant_id == "bob" and report.producer_id == "b" and report.switches == 2
    assert report.identity_mismatch_examples[0][3] == "bob"
    # The frame counter restarts with each source: alice's 0..2 then bob's 103..105 miss nothing.
    assert report.frames_missing == 0


def test_decoded_pictures_are_checked_against_the_stamp_of_their_rtp_timestamp() -> None:
    """A decoded picture (its pts is its frame's RTP timestamp: seams.decode_with_rtp_timestamps)
    must show the bar code its frame's stamp names; a wrong picture, or one whose frame carried no
    stamp, is an index mismatch. Bar codes repeat (every loop, and across the sources a slot
    carries), so nothing is guessed from them."""
    from av import VideoFrame

    from bots.picture import PictureMaker

    maker = PictureMaker(64, 48, 16)
    c = StreamCounter("video", "1", 90000, 1 / 15)
    base = 4_294_960_000  # the slot's timestamps wrap during the test
    t = 1_000_000

    def ts(i: int) -> int:
        return (base + 3000 * i) & 0xFFFFFFFF

    for i in range(6):  # alice: pictures 0..5, then bob: pictures 0, 5, 10, 15, 4, 9
        c.on_packet(i, ts(i), 1, video_frame(i, "alice", t), t)
    for i in range(6):
        bob = b"\x80\x80\x80\x01vp8" + pack_stamp(i, (5 * i) % 16, 0, t, source_tag("bob"))
        c.on_packet(6 + i, ts(6 + i), 1, bob, t)

    def decode(timestamp: int, index: int) -> None:
        frame = VideoFrame(64, 48, "yuv420p")
        maker.draw(index, frame)
        frame.pts = timestamp
        c.on_decoded_video(frame, check_freeze=False, timestamp=timestamp)

    for i in range(6):
        decode(ts(i), i)
    decode(ts(6), 0)
    decode(ts(7), 5)
    assert c.index_mismatches == 0 and c.decoded_frames == 8
    decode(ts(8), 2)  # bob's picture 10 decoded wrong
    decode(ts(40), 3)  # no frame had this timestamp
    assert c.index_mismatches == 2
