"""A track's clock: RTP timestamps onto the recording's millisecond line."""

from __future__ import annotations

from recordings.timeline import TrackClock


def test_frames_are_placed_by_rtp_time_from_the_first_arrival() -> None:
    clock = TrackClock(clock_rate=90000, origin_ms=10_000)
    assert clock.media_ms(1000, 10_500) == 500
    # Arrival jitter does not move frames: their RTP time does.
    assert clock.media_ms(1000 + 2970, 10_560) == 533
    assert clock.media_ms(1000 + 90000, 11_530) == 1500
    assert [a.reason for a in clock.anchors] == ["first"]


def test_silence_is_kept_not_squeezed() -> None:
    clock = TrackClock(clock_rate=48000, origin_ms=0)
    clock.media_ms(0, 100)
    # DTX: nothing for 700 ms, the RTP clock ran on.
    assert clock.media_ms(48000 * 7 // 10, 800) == 800


def test_stale_timestamps_after_a_pause_reanchor_at_arrival() -> None:
    clock = TrackClock(clock_rate=48000, origin_ms=0)
    clock.media_ms(5000, 0)
    clock.media_ms(5960, 20)
    # The sender stopped for 5 s and resumed where its clock stood: placed at arrival, not squeezed.
    assert clock.media_ms(6920, 5020) == 5020
    assert [a.reason for a in clock.anchors] == ["first", "reanchor"]


def test_timestamp_wrap_and_reordering_never_go_backwards() -> None:
    clock = TrackClock(clock_rate=90000, origin_ms=0)
    start = 0xFFFFFFFF - 4500
    assert clock.media_ms(start, 0) == 0
    assert clock.media_ms((start + 9000) & 0xFFFFFFFF, 100) == 100
    assert clock.media_ms((start + 4500) & 0xFFFFFFFF, 101) == 100  # a late frame: not before the last


def test_sender_reports_are_kept_sparsely() -> None:
    clock = TrackClock(clock_rate=90000, origin_ms=0)
    for second in range(60):
        clock.add_sender_report(second << 32, second * 90000, second * 1000)
    assert len(clock.sender_reports) == 3 + 5
