"""The poor-links matrix's arithmetic on made-up samples (no lab, no browser): audio played, the longest
concealment event at the sampling resolution, stalls of the stage video, the sending rate and the fall."""

from __future__ import annotations

from typing import Any

from link_checks import checks
from link_metrics import measure
from link_run import Fall, RunPlan, RunRecord, Sample

from linklab import parse_profile

STEP = 0.25
SAMPLES_PER_STEP = 12_000  # 48 kHz


def _page(played: int, concealed: int, frames: int) -> dict[str, Any]:
    return {"inbound": [{"slotId": "stage-audio", "participantId": "chair", "totalSamplesReceived": played,
                         "concealedSamples": concealed, "silentConcealedSamples": 0},
                        {"slotId": "stage-video", "participantId": "chair", "framesDecoded": frames,
                         "freezeCount": 0, "totalFreezesDuration": 0.0}],
            "elements": [{"slotId": "stage-audio", "paused": False, "muted": False}], "layers": None, "reconnects": 0,
            "phase": "joined"}


def _relay(sent: int) -> dict[str, dict[str, int]]:
    down = {"in_bytes": sent, "in_packets": sent // 1000, "delivered_bytes": sent, "dropped_loss": 0, "dropped_queue": 0}
    return {"downlink": down, "uplink": {"in_bytes": 0, "in_packets": 0}}


def _record(steps: int, *, concealed_at: dict[int, int], frozen: range, kbit_at: Any,
            fall: Fall | None = None) -> RunRecord:
    record = RunRecord(RunPlan("poor", fall=fall), parse_profile("poor"), chair_id="chair")
    played = concealed = frames = sent = 0
    for i in range(steps + 1):
        if i:
            played += SAMPLES_PER_STEP
            concealed += concealed_at.get(i, 0)
            frames += 0 if i in frozen else 4
            sent += int(kbit_at(i * STEP) * 1000 / 8 * STEP)
        record.samples.append(Sample(i * STEP, _page(played, concealed, frames), _relay(sent)))
    return record


def test_audio_video_and_rate_numbers_follow_the_samples() -> None:
    # 500 ms fully concealed (two intervals) ending 62.5 ms into the next; 1.5 s without a frame; 500 kbit/s.
    record = _record(40, concealed_at={11: 12_000, 12: 12_000, 13: 3_000}, frozen=range(21, 27), kbit_at=lambda t: 500)
    metrics = measure(record)
    assert metrics.audio_played == 1 - 27_000 / (40 * 12_000)
    assert metrics.longest_concealment_ms == 562.5
    assert metrics.longest_freeze_ms == 1500.0
    assert round(metrics.stage_fps or 0, 1) == 13.6
    assert round(metrics.send_kbit_max5s or 0) == 500 and round(metrics.send_fraction_max5s or 0, 2) == 0.5
    assert metrics.stage_held == 1.0 and metrics.audio_elements_playing
    verdicts = {c.column: c.passed for c in checks("poor", metrics)}
    assert verdicts["audio played"] is False and verdicts["longest conceal"] is False
    assert verdicts["longest freeze"] is False and verdicts["send/link 5s"] is True
    assert verdicts["fall: down"] is None


def test_scattered_concealment_is_bounded_by_the_largest_interval() -> None:
    record = _record(40, concealed_at={5: 2_400, 9: 4_800, 30: 1_200}, frozen=range(0), kbit_at=lambda t: 500)
    assert measure(record).longest_concealment_ms == 100.0


def test_a_fall_is_timed_from_the_sending_rate() -> None:
    fall = Fall(rate_kbit=300, at_s=10, seconds=10)

    def kbit(t: float) -> float:  # 1500 kbit/s, down to 200 from 12 s (2 s after the fall), back 3 s after
        return 200 if 12 <= t < 23 else 1500
    record = _record(160, concealed_at={}, frozen=range(0), kbit_at=kbit, fall=fall)
    record.fall_at, record.recover_at = 10.0, 20.0
    metrics = measure(record)
    assert metrics.fall_down_s is not None and 2.5 <= metrics.fall_down_s <= 3.5
    assert metrics.fall_up_s is not None and 3.5 <= metrics.fall_up_s <= 4.5
    assert [c.passed for c in checks("fall", metrics) if c.column.startswith("fall")] == [True, True]


def test_time_without_a_receiving_connection_counts_as_concealed_and_frozen() -> None:
    record = _record(40, concealed_at={}, frozen=range(0), kbit_at=lambda t: 500)
    for sample in record.samples[20:24]:  # 1 s reconnecting: the page has no receiving connection
        sample.page = None
    metrics = measure(record)
    assert metrics.audio_played == 1 - 5 / 40  # the 5 intervals touching the gap
    assert metrics.longest_concealment_ms == 1250.0
    assert metrics.freeze_percent == 100 * 1.25 / 10 and metrics.longest_freeze_ms == 1250.0
    assert metrics.disconnected_s == 1.25


def test_a_fall_ended_by_the_page_reconnecting_is_no_adaptation() -> None:
    fall = Fall(rate_kbit=300, at_s=10, seconds=10)
    record = _record(160, concealed_at={}, frozen=range(0), kbit_at=lambda t: 0 if 15 <= t < 18 else 1500, fall=fall)
    record.fall_at, record.recover_at = 10.0, 20.0
    for sample in record.samples[60:72]:  # the page lost its connection: the server stopped sending to it
        sample.page = None
    metrics = measure(record)
    assert metrics.fall_down_s is None and metrics.fall_up_s is None
    assert [c.value for c in checks("fall", metrics) if c.column.startswith("fall")] == ["never", "never"]


def test_a_fall_is_timed_from_the_layers_where_the_page_shows_them() -> None:
    fall = Fall(rate_kbit=300, at_s=10, seconds=10)
    record = _record(160, concealed_at={}, frozen=range(0), kbit_at=lambda t: 1500, fall=fall)
    record.fall_at, record.recover_at = 10.0, 20.0
    for sample in record.samples:
        low = 11.5 <= sample.t < 26
        assert sample.page is not None
        sample.page["layers"] = {"stage-audio": {"state": "active", "layer": 0},
                                 "stage-video": {"state": "active", "layer": 0 if low else 2},
                                 "video-0": {"state": "paused_bandwidth" if low else "active", "layer": 2}}
        sample.page["link"] = {"estimate_kbps": 400 if low else 1600}
    metrics = measure(record)
    assert metrics.fall_layer_down_s == 1.5 and metrics.fall_layer_up_s == 6.0
    assert metrics.fall_down_s is None  # the sending rate never fell (made up: 1500 kbit/s throughout)
    assert metrics.layers is not None and metrics.layers.startswith("stage L2 ")
    cells = {c.column: c for c in checks("fall", metrics)}
    assert cells["fall: down"].value == "1.5s" and cells["fall: down"].passed
    assert cells["fall: up"].value == "6.0s" and cells["fall: up"].passed
