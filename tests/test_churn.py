"""Churn beside long-lived subscribers (issue 11): clients join, publish and leave in turns on a real
server process while two lean subscribers stay. The subscribers see every new publisher in their slots,
keep receiving, are never sent another offer, and their negotiated SDP never changes; the server's
memory comes back to within 10 % of its level before the churn.

A bounded version of ``bench/churn.py --seconds 300`` (the full five minutes are in BENCHMARKS.md).
"""

from __future__ import annotations

import argparse

import pytest

from bench.churn import run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


async def test_churn_keeps_long_lived_subscribers_receiving_and_memory_bounded(tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    args = argparse.Namespace(seconds=45.0, clients=30, concurrent=5, hold_min=1.5, hold_max=4.0, settle=6.0,
                              cache_dir=tmp_path_factory.mktemp("media"), json=True, tracemalloc=None,
                              malloc_trim=False)
    report = await run(args)
    assert report["join_failures"] == 0 and report["joins"] >= 30, report
    for subscriber in report["subscribers"]:
        assert subscriber["publishers_seen"] == subscriber["publishers"] == report["joins"], subscriber
        assert subscriber["packets_during_churn"] > 1000, subscriber
        assert subscriber["offers_after_join"] == 0 and not subscriber["sdp_changed"], subscriber
        assert subscriber["errors"] == [], subscriber
    assert report["rss_after_over_before"] <= 1.10, report
