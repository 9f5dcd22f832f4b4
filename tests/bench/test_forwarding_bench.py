"""Smoke test of bench/forwarding.py: a tiny run (1 publisher, 1 subscriber, 3 s) of Cabinet's SFU and
of the MediaRelay baseline produces one JSON object with the documented keys and sane values.

Speed targets live in the benchmark's output ("targets"), never in tests: this machine is shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

KEYS = ("us_per_forwarded_packet", "forwarded_pps", "loss_percent", "added_delay_ms_p50", "added_delay_ms_p99")


@pytest.mark.timeout(120)
def test_tiny_run_prints_one_json_object_with_sane_figures() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "forwarding.py"), "--publishers", "1", "--subscribers", "1",
         "--seconds", "3", "--warmup", "1.5", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=100, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, completed.stdout[-2000:]
    report = json.loads(lines[0])

    for key in KEYS:
        assert key in report, key
        assert f"baseline_{key}" in report, key
    assert report["machine"]["cores"] >= 1 and len(report["machine"]["loadavg"]) == 3
    for run in (report["ours"], report["baseline"]):
        assert run["forwarded_packets"] > 0 and run["forwarded_pps"] > 0
        assert run["us_per_forwarded_packet"] > 0
        assert 0 <= run["loss_percent"] <= 100
        assert run["sfu_cpu_seconds"] > 0
    ours = report["ours"]
    assert ours["delay_samples"] > 0
    assert 0 <= ours["added_delay_ms_p50"] <= ours["added_delay_ms_p99"] < 10_000
    baseline = report["baseline"]  # frame matching can find nothing when the machine is starved
    if baseline["added_delay_ms_p50"] is not None:
        assert 0 <= baseline["added_delay_ms_p50"] <= baseline["added_delay_ms_p99"] < 60_000
    # One publisher (audio + video) to one subscriber: the SFU forwards about what is published.
    assert 0.5 * ours["published_pps"] <= ours["forwarded_pps"] <= 1.5 * ours["published_pps"]
    assert ours["loadgen_anomalies"]["unknown"] == 0
    assert report["ratio"] > 0
    assert report["ratio"] == pytest.approx(
        report["baseline_us_per_forwarded_packet"] / report["us_per_forwarded_packet"], rel=0.05)
    assert "us_per_packet_met" in report["targets"] and "ratio_met" in report["targets"]
