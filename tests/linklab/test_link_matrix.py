"""The poor-links matrix in short: a real Chromium governor in a lab site watches a cabinet session
(loopback bots: the chair speaking on the stage, two thumbnails) over a clean, a poor (1 Mbit/s, 300 ms
RTT, 5 % loss) and a 64 kbit/s link (floor64), and the thresholds of tests/linklab/link_checks.py hold.

These are the targets of the server's adaptation to poor links (temporal layers, a bandwidth estimate
per site, audio first); bench/link_matrix.py runs the whole matrix with medians. One run of 25 s
measured per profile here, after a 10 s warm-up; each prints its row.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_site import CHROMIUM
from link_checks import checks, failures
from link_metrics import measure
from link_run import RunPlan, run_once

from linklab import Lab

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(240)]

SECONDS = 25.0


@pytest.mark.parametrize("profile", ["clean", "poor", "floor64"])
async def test_a_governor_in_a_site_hears_and_sees_the_session_within_the_links_thresholds(
        lab: Lab, tmp_path: Path, profile: str) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    record = await run_once(lab, RunPlan(profile, seconds=SECONDS, media_cache=tmp_path / "media"), tmp_path)
    metrics = measure(record)
    cells = checks(profile, metrics)
    print(f"\n{profile} ({record.total_s:.0f} s): " + ", ".join(f"{c.column} {c.value} {c.threshold} {c.verdict}".strip()
                                                         for c in cells))
    print(f"  sent {metrics.send_kbit_mean:.0f} kbit/s (max 5 s {metrics.send_kbit_max5s:.0f}), delivered "
          f"{metrics.delivered_kbit_mean:.0f}, queue drops {metrics.downlink_queue_drop_percent:.1f} %, "
          f"uplink {metrics.uplink_kbit_mean:.0f} kbit/s; reconnects {metrics.reconnects}; chair on the stage "
          f"{100 * (metrics.stage_held or 0):.0f} % of the samples; "
          f"layers: {metrics.layers or 'not shown by the page'}")
    # The instrument itself: media really crossed the site's link, and the page played the stage's voice
    # (a remote track counts no samples unless an element plays it).
    assert metrics.delivered_kbit_mean is not None and metrics.delivered_kbit_mean > 20
    assert metrics.audio_elements_playing, "the page does not play the stage's audio (samples would not count)"
    failed = failures(profile, metrics)
    assert not failed, "; ".join(f"{c.column} {c.value} (needs {c.threshold})" for c in failed)
