"""How long each signaling message holds the server's event loop, at its largest accepted size.

Runs the scenario of tests/test_loop_budget.py (a real server on loopback, every client event at the
largest size the server accepts and just over it) and prints, per case, the longest single callback of
the server's loop while the message was handled (minimum over --runs repeats of the per-run maximum):
CPU time of the server thread without garbage collection (the budget's figure), CPU with it, elapsed
time; then the same for the smallest valid payload of each event, and the ratio max/minimal.

    .venv/bin/python bench/loop_budget.py [--runs 3] [--json] [--profile 'publish (rtpmap)']

--profile NAME re-runs once with cProfile around every callback and prints the profile of the longest
callback of the cases whose name contains NAME (timings are then inflated by the profiler).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from harness import LiveServer, make_config  # noqa: E402
from loop_budget_cases import Case, Scenario  # noqa: E402

BUDGET_MS = 50.0


async def scenario(minimal: bool, runs: int, profile: str = "") -> list[Case]:
    with tempfile.TemporaryDirectory(prefix="loop-budget-") as data:
        live = LiveServer(make_config(Path(data), **{
            "media.ice_bind_addresses": ["127.0.0.1"], "signaling.rate_per_second": 1000.0,
            "signaling.rate_burst": 1000})).start()
        try:
            return await Scenario(live, runs=runs, minimal=minimal, profile=bool(profile), only=profile,
                                  log=(print if profile else None)).run()
        finally:
            live.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", default="")
    args = parser.parse_args()
    if args.profile:
        asyncio.run(scenario(False, 1, args.profile))
        return
    load_before = os.getloadavg()
    started = time.time()
    largest = asyncio.run(scenario(False, args.runs))
    minimal = asyncio.run(scenario(True, args.runs))
    smallest = {c.name: c for c in minimal}
    by_event: dict[str, Case] = {}
    for c in minimal:
        by_event.setdefault(c.event, c)
    rows = []
    for case in largest:  # baseline: the same case with the smallest payload, else the event's first one
        base = smallest.get(case.name) or by_event.get(case.event)
        m = case.measured
        rows.append({"case": case.name, "event": case.event, "refused": case.refused,
                     "hold_ms": round(m.work_ms, 2), "hold_with_gc_ms": round(m.cpu_ms, 2),
                     "wall_ms": round(m.wall_ms, 2), "gc_max_ms": round(m.gc_ms, 2),
                     "minimal_hold_ms": round(base.measured.work_ms, 2) if base else None,
                     "ratio": round(m.work_ms / base.measured.work_ms, 1) if base and base.measured.work_ms else None})
    worst = max(rows, key=lambda r: r["hold_ms"])
    summary = {"budget_ms": BUDGET_MS, "runs": args.runs, "worst": worst["case"], "worst_hold_ms": worst["hold_ms"],
               "over_budget": [r["case"] for r in rows if r["hold_ms"] > BUDGET_MS],
               "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                           "load_before": load_before, "load_after": os.getloadavg(),
                           "seconds": round(time.time() - started, 1)}}
    if args.json:
        print(json.dumps({"cases": rows, **summary}, indent=1))
        return
    print(f"{'case':52s} {'hold ms':>8s} {'+gc ms':>8s} {'wall ms':>8s} {'minimal':>8s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['case'][:52]:52s} {r['hold_ms']:8.2f} {r['hold_with_gc_ms']:8.2f} {r['wall_ms']:8.2f} "
              f"{'' if r['minimal_hold_ms'] is None else format(r['minimal_hold_ms'], '8.2f'):>8s} "
              f"{'' if r['ratio'] is None else format(r['ratio'], '6.1f'):>6s}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
