"""The poor-links matrix: how a governor's real Chromium hears and sees a cabinet session over each link.

    .venv/bin/python bench/link_matrix.py                          # every profile, medians of 3 runs
    .venv/bin/python bench/link_matrix.py --runs 1 --profiles poor,fall --seconds 30 --json out.json

Per run (tests/linklab/link_run.py): a live server on the lab's address, loopback bots publishing (the
chair speaking with audio and video, holding the stage; two video-only publishers in thumbnails), and one
headless Chromium "governor" inside a lab site joining the room page; the site's link is set to the
profile, and after a warm-up the page's receiving getStats and the relay's counters are sampled every
250 ms (tests/linklab/link_metrics.py says what each number is). Rows:

- clean, province, poor, bursty, edge, floor64: the named profiles of linklab/profiles.py;
- fall: province's 2 Mbit/s link falls to 300 kbit/s 12 s into the measurement for 30 s, and recovers;
  measured for at least 62 s. "down": seconds until the server's sending rate (1 s mean) is below
  300 kbit/s; "up": seconds after the recovery until it is back at 80 % of its rate before the fall.

Thresholds (tests/linklab/link_checks.py) are printed beside the values with PASS/FAIL; a value
without a threshold is for information. One Chromium at a time (a 2-core machine). Needs root,
/dev/net/tun and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

# This directory holds bench/linklab.py, named like the package: keep it off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "tests" / "linklab", ROOT / "tests", ROOT):
    sys.path.insert(0, str(_path))

from link_checks import COLUMNS, checks  # noqa: E402
from link_metrics import Metrics, measure, median_metrics  # noqa: E402
from link_run import Fall, RunPlan, run_once  # noqa: E402

from linklab import Lab  # noqa: E402
from linklab.lab import check_privileges  # noqa: E402

ALL = ("clean", "province", "poor", "bursty", "edge", "fall", "floor64")
FALL = Fall(rate_kbit=300, at_s=12, seconds=30)
#: Measured after the recovery, at least.
AFTER_FALL_S = 20.0


def plan_for(name: str, seconds: float, seed: int) -> RunPlan:
    if name == "fall":
        return RunPlan("province", seconds=max(seconds, FALL.at_s + FALL.seconds + AFTER_FALL_S), fall=FALL, seed=seed)
    return RunPlan(name, seconds=seconds, seed=seed)


async def run_matrix(names: list[str], runs: int, seconds: float, keep: Path) -> dict[str, list[Metrics]]:
    results: dict[str, list[Metrics]] = {}
    async with Lab() as lab:
        for name in names:
            for run in range(runs):
                started = time.monotonic()
                record = await run_once(lab, plan_for(name, seconds, seed=run + 1), Path(tempfile.mkdtemp(dir=keep)))
                metrics = measure(record)
                metrics.profile = name
                results.setdefault(name, []).append(metrics)
                cells = ", ".join(f"{c.column} {c.value} {c.verdict}".strip() for c in checks(name, metrics))
                print(f"# {name} run {run + 1}/{runs} ({time.monotonic() - started:.0f} s): {cells}", file=sys.stderr,
                      flush=True)
    return results


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def report(results: dict[str, list[Metrics]]) -> str:
    verdicts = [["profile", *(c.column for c in COLUMNS)]]
    info = [["profile", "runs", "measured", "run time", "send kbit/s max5s", "mean", "delivered", "queue drops",
             "link loss", "uplink kbit/s", "up/link", "estimate", "rate down/up", "layers", "audio el. playing", "stage held", "reconnects", "disconnected"]]
    for name, runs in results.items():
        m = median_metrics(runs)
        verdicts.append([name, *(f"{c.value} {c.threshold} {c.verdict}".strip() for c in checks(name, m))])

        def num(v: float | None, fmt: str = "{:.0f}") -> str:
            return "n/a" if v is None else fmt.format(v)
        info.append([name, str(len(runs)), f"{m.seconds:.0f}s", f"{m.run_s:.0f}s", num(m.send_kbit_max5s),
                     num(m.send_kbit_mean), num(m.delivered_kbit_mean), num(m.downlink_queue_drop_percent, "{:.1f}%"),
                     num(m.downlink_loss_percent, "{:.1f}%"), num(m.uplink_kbit_mean), num(m.uplink_fraction, "{:.2f}x"),
                     num(m.estimate_kbps), f"{num(m.fall_down_s, '{:.1f}s')}/{num(m.fall_up_s, '{:.1f}s')}",
                     m.layers or "not shown", str(m.audio_elements_playing),
                     num(None if m.stage_held is None else 100 * m.stage_held, "{:.0f}%"), num(m.reconnects),
                     num(m.disconnected_s, "{:.1f}s")])
    return table(verdicts) + "\n\n" + table(info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default=",".join(ALL), help=f"comma-separated rows (default {','.join(ALL)})")
    parser.add_argument("--runs", type=int, default=3, help="runs per profile; the table shows medians (default 3)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run (default 30)")
    parser.add_argument("--json", type=Path, help="also write every run's numbers here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the server and every site budget tick")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(relativeCreated)8.0f %(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("media.site_budget").setLevel(logging.DEBUG)  # every tick: what was sent, the estimate
    names = [n.strip() for n in args.profiles.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown or args.runs < 1 or args.seconds < 5:
        parser.error(f"unknown profile(s) {unknown}; known: {', '.join(ALL)}" if unknown else "runs >= 1, seconds >= 5")
    check_privileges()
    with tempfile.TemporaryDirectory(prefix="link-matrix-") as keep:
        results = asyncio.run(run_matrix(names, args.runs, args.seconds, Path(keep)))
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps({n: [m.to_dict() for m in ms] for n, ms in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
