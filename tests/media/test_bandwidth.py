"""The site's bandwidth estimator: REMB (summed over its sources), loss-based cap, probes."""

from __future__ import annotations

import pytest

from media.bandwidth import MIN_BPS, RembLossEstimator


def test_a_remb_below_the_cap_without_a_fall_is_not_congestion() -> None:
    est = RembLossEstimator(600_000, remb_warmup_ms=0)
    est.on_remb(200_000, 0)  # a receiver that has seen little traffic yet
    assert est.estimate(0) == 600_000 and est.last_congestion_ms < 0
    est.on_sent(700_000, 400, media_bps=700_000)
    est.on_remb(900_000, 500)
    assert est.estimate(500) == 900_000, "a REMB above the cap raises it"
    est.on_remb(3_000_000, 600)
    assert est.estimate(600) == 1_050_000, "to 1.5 x what was sent at most"


def test_a_falling_remb_is_a_congestion_signal_and_sets_the_cap() -> None:
    est = RembLossEstimator(600_000, remb_warmup_ms=0)
    est.on_sent(800_000, 0)
    est.on_remb(1_000_000, 0)
    est.on_remb(700_000, 1000)
    assert est.last_congestion_ms == 1000
    assert est.estimate(1000) == 700_000
    est.on_remb(650_000, 2000)  # a small fall: no signal
    assert est.last_congestion_ms == 1000


def test_rembs_of_several_sources_add_up_and_a_silent_one_drops_out_quietly() -> None:
    est = RembLossEstimator(100_000, remb_warmup_ms=0)
    est.on_sent(1_000_000, 0)
    est.on_remb(300_000, 0, source=1)  # aiortc: one REMB per receiving m-line
    est.on_remb(200_000, 100, source=2)
    assert est.remb == 500_000 and est.estimate(100) == 500_000
    est.on_remb(310_000, 6000, source=1)  # source 2 silent for 5.9 s
    assert est.remb == 310_000
    assert est.last_congestion_ms < 0, "a source going quiet is not a fall"


def test_high_loss_cuts_the_loss_cap_and_low_loss_lets_it_grow_up_to_what_was_sent() -> None:
    est = RembLossEstimator(1_000_000, remb_warmup_ms=0)
    est.on_sent(1_000_000, 0)
    est.estimate(0)
    est.on_report(1, 64, 0)  # 25 %
    est.estimate(0)
    est.on_report(1, 64, 1000)
    assert est.estimate(1000) < 1_000_000 * 0.9
    cut = est.loss_cap
    assert est.estimate(1500) == cut, "no new report: no new step"
    assert est.last_congestion_ms == 1000 and est.loss == pytest.approx(0.25)
    low = est.loss_cap
    est.on_report(1, 0, 3600)  # the 25 % reports are out of the loss window
    est.on_sent(2_000_000, 3600)
    est.estimate(3600)
    assert est.loss_cap > low
    est.on_sent(10_000, 3000)
    for t in range(3000, 30000, 500):
        est.estimate(t)
    assert est.loss_cap <= max(low * 1.2, 15_000), "growth is capped by 1.5 x what was sent"
    assert est.estimate(30000) >= MIN_BPS


def test_loss_is_weighted_by_the_packets_each_report_speaks_for() -> None:
    est = RembLossEstimator(remb_warmup_ms=0)
    est.on_report(1, 0, 0, highest_sequence=1000)
    est.on_report(2, 0, 0, highest_sequence=50)
    est.on_report(1, 0, 1000, highest_sequence=1900)  # 900 packets, none lost
    est.on_report(2, 128, 1000, highest_sequence=52)  # 2 packets, one lost: 50 %
    est.estimate(1000)
    assert est.loss == pytest.approx(0.5 * 2 / 902, rel=0.01)


def test_moderate_loss_holds_and_old_reports_expire() -> None:
    est = RembLossEstimator(800_000, remb_warmup_ms=0)
    est.estimate(0)
    est.on_report(1, 13, 0)  # 5 %
    est.estimate(1000)
    assert est.estimate(1000) == 800_000 and est.last_congestion_ms < 0
    est.estimate(5000)
    assert est.loss == 0.0, "reports older than 3 s no longer count"


def test_the_loss_cap_steps_on_enough_packets_so_one_noisy_report_is_not_congestion() -> None:
    est = RembLossEstimator(800_000, remb_warmup_ms=0)
    est.on_sent(700_000, 0)
    est.estimate(0)
    est.on_report(1, 0, 0, highest_sequence=0)
    for t, lost, seq in ((1000, 10, 100), (2000, 8, 200), (3000, 33, 250)):  # 4 %, 3 %, then 13 % of 50
        est.on_report(1, lost, t, highest_sequence=seq)
        est.estimate(t)
    assert est.loss == pytest.approx((10 * 100 + 8 * 100 + 33 * 50) / 250 / 256, rel=0.01)
    assert est.last_congestion_ms < 0 and est.estimate(3000) == 800_000


def test_a_remb_fall_during_a_probe_returns_the_cap_to_before_the_probe_not_below() -> None:
    est = RembLossEstimator(600_000, remb_warmup_ms=0)
    est.on_sent(600_000, 0)
    est.on_remb(750_000, 0)
    est.on_probe_start(750_000, 5000)
    est.on_remb(380_000, 5400)  # 0.85 of what arrived before the probe: the probe overshot
    assert est.last_congestion_ms == 5400, "the probe failed"
    assert est.estimate(5400) == 750_000
    est.on_probe_end(5500)
    est.on_remb(300_000, 8900)  # within the grace: still the probe's
    assert est.estimate(8900) == 750_000
    est.on_remb(400_000, 9100)
    est.on_remb(250_000, 10_000)  # a fall after the grace is honoured (nothing was sent meanwhile)
    assert est.estimate(10_000) == 250_000


def test_high_loss_during_a_probe_cuts_no_lower_than_before_the_probe() -> None:
    est = RembLossEstimator(2_000_000, remb_warmup_ms=0)
    est.on_sent(600_000, 0)
    est.on_report(1, 0, 0)
    est.estimate(0)
    est.on_report(1, 64, 1000)  # 25 %: the loss cap is cut to ~530 kbit/s
    est.estimate(1000)
    est.on_sent(500_000, 1500)
    est.on_probe_start(530_000, 2000)
    est.on_sent(900_000, 2500)
    est.on_report(1, 64, 3000)
    est.estimate(3000)
    assert est.loss_cap >= 500_000 and est.last_congestion_ms == 3000


def test_a_probe_raises_both_caps() -> None:
    est = RembLossEstimator(300_000, remb_warmup_ms=0)
    est.on_remb(310_000, 0)
    est.on_probe(900_000, 100)
    assert est.estimate(100) == 900_000


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="start"):
        RembLossEstimator(1, remb_warmup_ms=0)
    with pytest.raises(ValueError, match="fraction"):
        RembLossEstimator(remb_warmup_ms=0).on_report(1, 300, 0)


def test_remb_falls_within_the_holdoff_are_one_episode() -> None:
    est = RembLossEstimator(1_000_000, remb_warmup_ms=0)
    est.on_sent(600_000, 0, media_bps=600_000)
    est.on_remb(400_000, 0)
    est.on_remb(300_000, 500)  # a fall: cut to 0.85 of the media sent
    assert est.estimate(500) == 510_000
    est.on_sent(400_000, 1000, media_bps=400_000)
    est.on_sent(400_000, 2600, media_bps=400_000)
    est.on_remb(100_000, 3000)  # 0.85 of what arrived after the cut: the same episode
    assert est.estimate(3000) == 510_000
    est.on_remb(200_000, 4000)
    est.on_sent(400_000, 4500, media_bps=400_000)
    est.on_remb(120_000, 5000)  # a new episode
    assert est.estimate(5000) == 340_000


def test_remb_falls_while_its_source_warms_up_are_not_congestion() -> None:
    est = RembLossEstimator(600_000)  # the default warm-up, as for a browser
    est.on_sent(450_000, 0, media_bps=450_000)
    est.on_remb(255_000, 0)
    est.on_remb(206_000, 500)  # Chromium's estimator settling, not a queue
    assert est.last_congestion_ms < 0 and est.estimate(500) == 600_000
    est.on_sent(450_000, 5500, media_bps=450_000)
    est.on_remb(150_000, 6000)
    assert est.last_congestion_ms == 6000


def test_heavy_loss_confirms_a_low_remb_at_once() -> None:
    est = RembLossEstimator(2_000_000)
    est.on_sent(1_500_000, 0, media_bps=1_500_000)
    est.on_remb(1_800_000, 0)
    est.on_sent(1_500_000, 5500, media_bps=1_500_000)
    est.on_remb(250_000, 6000)  # the link fell: a fall, floored at 0.85 of what was sent
    assert est.estimate(6000) > 1_000_000
    est.on_report(1, 0, 6000, highest_sequence=1000)
    est.on_report(1, 200, 6500, highest_sequence=1060)  # 78 % of 60 packets
    assert est.estimate(6500) <= 250_000, "the loss confirms the REMB"


def test_loss_far_over_a_probes_cuts_at_once_to_what_got_through() -> None:
    """A 64 kbit/s site sent 600: 90 % lost. The cap falls to 0.85 of what arrived, probe or not."""
    est = RembLossEstimator(600_000, remb_warmup_ms=0)
    est.on_sent(600_000, 0, media_bps=600_000)
    est.on_report(1, 0, 0, highest_sequence=1000)
    est.on_probe_start(600_000, 100)  # not even a probe's floor holds it up
    est.on_sent(600_000, 500, media_bps=600_000)
    est.on_report(1, 230, 1000, highest_sequence=1100)  # 90 % of 100 packets
    assert est.estimate(1000) == int(0.85 * 600_000 * (1 - 230 / 256))
    assert est.last_congestion_ms == 1000


def test_silence_while_sending_video_halves_the_cap_each_second() -> None:
    est = RembLossEstimator(600_000, remb_warmup_ms=0)
    est.on_report(1, 0, 0, highest_sequence=10)
    for ms in range(0, 6001, 500):
        est.on_sent(500_000, ms, media_bps=500_000)
        est.estimate(ms)
        if ms < 2500:
            assert est.estimate(ms) == 600_000 and est.last_congestion_ms < 0, "a report every 2.5 s is not silence"
    # silent from 0: cut at 2.5 s (to 250), 3.5 (125), 4.5 (62), 5.5 (31) ms
    assert est.estimate(6000) == 31_250 and est.last_congestion_ms == 5500


def test_silence_while_receiving_audio_only_is_not_a_signal() -> None:
    """Chromium reports an audio-only connection every ~5 s."""
    est = RembLossEstimator(600_000, remb_warmup_ms=0)
    est.on_report(1, 0, 0, highest_sequence=10)
    for ms in range(0, 8001, 500):
        est.on_sent(45_000, ms, media_bps=45_000)
        est.estimate(ms)
    assert est.estimate(8000) == 600_000 and est.last_congestion_ms < 0


def test_a_remb_starved_far_below_what_is_sent_sets_the_cap_even_warming_up() -> None:
    """Chromium's REMB said 5 kbit/s of a 64 kbit/s link sent 500, and its reports no loss: the
    streams whose packets all drown report nothing."""
    est = RembLossEstimator(600_000)  # the browser's warm-up
    est.on_sent(500_000, 0, media_bps=500_000)
    est.on_remb(5_000, 0)
    est.on_sent(500_000, 1000, media_bps=500_000)
    est.on_remb(6_000, 1000)
    assert est.estimate(1000) == 600_000, "not on one reading"
    est.on_sent(500_000, 1500, media_bps=500_000)
    est.on_remb(6_000, 1600)
    assert est.estimate(1600) == MIN_BPS and est.last_congestion_ms == 1600
    # a REMB of half of what is sent is Chromium's noise on a good link, not starvation
    est = RembLossEstimator(1_000_000)
    for ms in range(0, 5001, 500):
        est.on_sent(900_000, ms, media_bps=900_000)
        est.on_remb(400_000, ms)
    assert est.estimate(5000) == 1_000_000 and est.last_congestion_ms < 0


def test_a_stalled_stream_counts_what_it_was_sent_as_lost() -> None:
    """Chromium's reports on a drowned stream: the same highest sequence and 0 % lost, again and again."""
    est = RembLossEstimator(600_000, remb_warmup_ms=0)
    est.on_sent(500_000, 0, media_bps=500_000)
    est.on_report(1, 0, 0, highest_sequence=1000, sent_packets=1000)
    est.on_report(1, 0, 1000, highest_sequence=1000, sent_packets=1040)
    assert est.estimate(1000) == 600_000, "a second without progress may be the round trip"
    est.on_sent(500_000, 1500, media_bps=500_000)
    est.on_report(1, 0, 1600, highest_sequence=1000, sent_packets=1070)  # 70 packets sent, none arrived
    assert est.estimate(1600) == MIN_BPS and est.last_congestion_ms == 1600
    # a paused stream (nothing sent) that stands still is not a stall
    est = RembLossEstimator(600_000, remb_warmup_ms=0)
    for ms in range(0, 6001, 1000):
        est.on_sent(500_000, ms, media_bps=500_000)
        est.on_report(1, 0, ms, highest_sequence=1000, sent_packets=1000)
        est.on_report(2, 0, ms, highest_sequence=ms // 10, sent_packets=ms // 10)
    assert est.estimate(6000) == 600_000 and est.last_congestion_ms < 0


def test_the_delivered_cut_is_one_per_overload_from_what_was_sent_before_it() -> None:
    """A fall to 300 kbit/s of a site sent 1.2 Mbit/s: the reports of the overload arrive while the
    budget has already cut to audio; they speak of 1.2 Mbit/s sent, and they are one episode."""
    est = RembLossEstimator(1_500_000, remb_warmup_ms=0)
    for ms in range(0, 2001, 500):
        est.on_sent(1_200_000, ms, media_bps=1_200_000)
    est.on_report(1, 0, 0, highest_sequence=0)
    est.on_report(1, 192, 2000, highest_sequence=100)  # 75 % lost
    first = est.estimate(2000)
    assert first == int(0.85 * 1_200_000 * 0.25)
    for ms in range(2500, 4001, 500):
        est.on_sent(45_000, ms, media_bps=45_000)  # audio only now
    est.on_report(1, 204, 3500, highest_sequence=160)  # more of the same overload
    assert est.estimate(3500) == first, "one cut per overload"
