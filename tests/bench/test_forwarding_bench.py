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


def test_the_late_joiners_keyframe_check_reads_the_vp8_descriptor_behind_the_rtp_header() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.loadgen.subscribers import vp8_keyframe_start
    from bench.media_loop import vp8_payloads

    keyframe = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A]) * 400  # P bit 0: a keyframe
    delta = bytes([0x11]) + keyframe[1:]
    one_byte_ext = bytes([0xBE, 0xDE, 0x00, 0x02]) + bytes(8)  # RFC 8285, two words

    def rtp(payload: bytes, extension: bool, csrcs: int = 0) -> bytes:
        header = bytes([0x80 | (0x10 if extension else 0) | csrcs, 96]) + bytes(10) + bytes(4 * csrcs)
        return header + (one_byte_ext if extension else b"") + payload

    for extension in (False, True):
        first, *rest = vp8_payloads(keyframe, 1234)
        assert vp8_keyframe_start(rtp(first, extension, csrcs=1))
        assert rest and not any(vp8_keyframe_start(rtp(p, extension)) for p in rest)  # S=0: not a start
        assert not vp8_keyframe_start(rtp(vp8_payloads(delta, 7)[0], extension))
