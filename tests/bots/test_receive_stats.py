"""StreamCounter: loss, recovery, duplicates, missing frames, freezes, latency (synthetic input)."""

from __future__ import annotations

from bots.report import percentile
from bots.stamp import pack_stamp
from bots.receive_stats import StreamCounter


def audio_payload(counter: int, send_us: int) -> bytes:
    return b"\x7b\x41\x14opus" + pack_stamp(counter, counter % 100, 0, send_us)


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
