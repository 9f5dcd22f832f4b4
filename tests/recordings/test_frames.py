"""VP8 frame assembly from RTP packets: order, loss, retransmission, keyframe waits."""

from __future__ import annotations

import random

import pytest

from media.rtp_packet import RtpPacketView, build_rtp
from recordings.frames import Vp8Assembler, opus_frame, vp8_keyframe_size, vp8_payload_offset

KEY_HEADER = b"\x10\x02\x00\x9d\x01\x2a" + (320).to_bytes(2, "little") + (240).to_bytes(2, "little")


def frame_bytes(index: int, key: bool, size: int) -> bytes:
    """A fake VP8 frame: the keyframe header where it matters, the index in the body."""
    head = KEY_HEADER if key else b"\x11\x02\x00"
    body = bytes([index & 0xFF]) * (size - len(head))
    return head + body


def packets_of(index: int, key: bool, seq: int, *, parts: int = 3, pid: int = 0) -> list[RtpPacketView]:
    """The RTP packets of frame ``index``: aiortc's descriptor (X, I with 15-bit PictureID)."""
    data = frame_bytes(index, key, 300 * parts)
    chunks = [data[i * 300:(i + 1) * 300] for i in range(parts)]
    out = []
    for n, chunk in enumerate(chunks):
        start = 0x10 if n == 0 else 0
        desc = bytes([0x80 | start, 0x80, 0x80 | (pid >> 8), pid & 0xFF])
        raw = build_rtp(payload_type=96, sequence_number=(seq + n) & 0xFFFF, timestamp=index * 3000, ssrc=1,
                        payload=desc + chunk, marker=int(n == parts - 1))
        out.append(RtpPacketView.parse(raw, arrival_ms=1000 + index * 33))
    return out


def stream(frames: int, *, key_every: int = 30, first_seq: int = 65530) -> list[list[RtpPacketView]]:
    seq = first_seq
    out = []
    for i in range(frames):
        out.append(packets_of(i, i % key_every == 0, seq, pid=i))
        seq += 3
    return out


def test_in_order_frames_come_out_whole_across_sequence_wrap() -> None:
    assembler = Vp8Assembler()
    got = [f for packets in stream(10) for p in packets for f in assembler.push(p)]
    assert [f.rtp_timestamp for f in got] == [i * 3000 for i in range(10)]
    assert got[0].keyframe and (got[0].width, got[0].height) == (320, 240)
    assert all(f.data == frame_bytes(i, i == 0, 900) for i, f in enumerate(got))
    assert assembler.stats.frames == 10 and not assembler.needs_keyframe


def test_reordered_and_retransmitted_packets_complete_the_frame() -> None:
    assembler = Vp8Assembler()
    frames = stream(6)
    packets = [p for f in frames for p in f]
    late = packets.pop(7)  # frame 2's middle packet, recovered later
    got = [f for p in packets[:12] for f in assembler.push(p)]
    assert [f.rtp_timestamp // 3000 for f in got] == [0, 1]  # frame 2 waits, frames 3.. wait behind it
    got += assembler.push(late)
    got += [f for p in packets[12:] for f in assembler.push(p)]
    assert [f.rtp_timestamp // 3000 for f in got] == [0, 1, 2, 3, 4, 5]
    assert assembler.stats.frames_lost == 0


def test_a_lost_packet_drops_frames_until_the_next_keyframe() -> None:
    assembler = Vp8Assembler(wait_ms=100)
    frames = stream(12, key_every=8)
    packets = [p for f in frames for p in f]
    del packets[4]  # frame 1 can never complete
    got = [f for p in packets for f in assembler.push(p)]
    indexes = [f.rtp_timestamp // 3000 for f in got]
    assert indexes == [0, 8, 9, 10, 11]  # 2..7 are deltas after the loss: undecodable, dropped
    assert assembler.stats.frames_lost == 1 and assembler.stats.frames_dropped >= 5
    assert not assembler.needs_keyframe


def test_stream_starting_mid_frame_and_without_keyframe_waits_and_asks() -> None:
    assembler = Vp8Assembler()
    frames = stream(5, key_every=4)
    packets = [p for f in frames for p in f][1:]  # starts in the middle of frame 0
    got = [f for p in packets[:8] for f in assembler.push(p)]
    assert got == [] and assembler.needs_keyframe
    got = [f for p in packets[8:] for f in assembler.push(p)]
    assert [f.rtp_timestamp // 3000 for f in got] == [4]


def test_duplicates_malformed_and_late_packets_are_counted_not_fatal() -> None:
    assembler = Vp8Assembler()
    frames = stream(3)
    for p in frames[0]:
        assembler.push(p)
    assert assembler.push(frames[0][1]) == []
    bad = RtpPacketView.parse(build_rtp(payload_type=96, sequence_number=1, timestamp=0, ssrc=1, payload=b"\x80"))
    assert assembler.push(bad) == []
    assert assembler.stats.duplicates + assembler.stats.late == 1
    assert assembler.stats.malformed == 1


def test_random_loss_never_yields_a_frame_that_depends_on_a_lost_one() -> None:
    rng = random.Random(7)
    assembler = Vp8Assembler(wait_ms=50)
    frames = stream(200, key_every=20)
    lost_frames = set()
    got = []
    for index, packets in enumerate(frames):
        for p in packets:
            if rng.random() < 0.03:
                lost_frames.add(index)
                continue
            got += assembler.push(p)
    got += assembler.flush_stale(10**9)
    emitted = [f.rtp_timestamp // 3000 for f in got]
    assert emitted == sorted(emitted)
    for index in emitted:
        assert index not in lost_frames
        key = index - index % 20
        assert not any(k in lost_frames for k in range(key, index)), index  # its reference chain is intact


def test_helpers_reject_truncated_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        vp8_payload_offset(b"")
    with pytest.raises(ValueError, match="PictureID"):
        vp8_payload_offset(b"\x80\x80")
    assert vp8_keyframe_size(b"\x11" * 20) is None
    assert vp8_keyframe_size(KEY_HEADER) == (320, 240)
    empty = RtpPacketView.parse(build_rtp(payload_type=111, sequence_number=1, timestamp=0, ssrc=1, payload=b""))
    assert opus_frame(empty) is None
