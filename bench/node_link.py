"""Figures of a provincial node across an emulated WAN (issue 14): the WAN bytes per byte a source sends
with 1, 3 and 6 viewers at the node, the node's CPU, and how soon media flows both ways again after
WAN blackholes (p50/p95 of N trials).

    sudo .venv/bin/python bench/node_link.py --trials 10 --outage 30

The centre runs in this process on the lab's server address, the node as a real process in a lab site
(tests/linklab/node_site.py), its people as bots inside the site. Needs root and /dev/net/tun.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
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

from node_site import (AIDES, NodeSite, centre_bot, centre_participant, frames_from, node_in_a_site,  # noqa: E402
                       until, wan_per_source_byte)

from linklab.lab import check_privileges  # noqa: E402


def governor_at_centre(site: NodeSite) -> str | None:
    participant = centre_participant(site, "governor")
    return participant.id if participant is not None else None


async def per_source_byte(site: NodeSite, participant_id: str) -> float:
    return (await wan_per_source_byte(site, participant_id))[0]


def reports(site: NodeSite) -> int:
    return sum(link.pipe.sender.stats.reports_received for link in site.pipes.links.values())


async def run(trials: int, outage: float, work_dir: Path) -> dict[str, object]:
    async with node_in_a_site(work_dir) as site:
        bots = [await centre_bot(site, "chair", publish=True), await centre_bot(site, "observer", publish=False)]
        chair, observer = bots
        try:
            viewers = [site.start_bot(AIDES[0], publish=False, seconds=3600)]
            await until(lambda: any(l.pipe.sender.taps for l in site.pipes.links.values()), 30)
            await per_source_byte(site, chair.client.participant_id)  # warm-up
            wan = {1: await per_source_byte(site, chair.client.participant_id)}
            for count in (3, 6):
                viewers += [site.start_bot(name, publish=False, seconds=3600) for name in AIDES[len(viewers):count]]
                await asyncio.sleep(8)
                wan[count] = await per_source_byte(site, chair.client.participant_id)
            site.start_bot("governor", publish=True, seconds=3600)
            await until(lambda: governor_at_centre(site) is not None, 30)
            await asyncio.sleep(5)
            cpu, wall = site.node_cpu_seconds(), time.monotonic()
            await asyncio.sleep(20)
            node_cpu = (site.node_cpu_seconds() - cpu) / (time.monotonic() - wall)

            up_times: list[float | None] = []
            down_times: list[float | None] = []
            for trial in range(trials):
                governor = governor_at_centre(site)
                assert governor is not None
                await until(lambda: frames_from(observer, governor) > 0, 30)  # noqa: B023
                await site.site.set_outage(True)
                await asyncio.sleep(outage)
                frames, heard = frames_from(observer, governor), reports(site)
                await site.site.set_outage(False)
                up = until(lambda: frames_from(observer, governor_at_centre(site) or "") > frames + 5, 60)
                down = until(lambda: reports(site) > heard, 60)
                up_s, down_s = await asyncio.gather(up, down)
                up_times.append(up_s)
                down_times.append(down_s)
                print(f"trial {trial + 1}: a {outage:.0f} s blackhole; node->centre back in "
                      f"{up_s if up_s is None else round(up_s, 2)} s, centre->node in "
                      f"{down_s if down_s is None else round(down_s, 2)} s", flush=True)
                await asyncio.sleep(5)
        finally:
            await asyncio.gather(*(asyncio.wait_for(b.stop(), 20) for b in bots), return_exceptions=True)

    def percentiles(values: list[float | None]) -> dict[str, float | None]:
        done = sorted(v for v in values if v is not None)
        if not done:
            return {"p50": None, "p95": None, "never": len(values)}
        p95 = done[min(len(done) - 1, round(0.95 * (len(done) - 1)))]
        return {"p50": round(statistics.median(done), 2), "p95": round(p95, 2), "max": round(done[-1], 2),
                "never": len(values) - len(done)}

    both = [None if u is None or d is None else max(u, d) for u, d in zip(up_times, down_times, strict=True)]
    return {"wan_bytes_per_source_byte": {str(k): round(v, 3) for k, v in wan.items()},
            "node_cpu_share": round(node_cpu, 3), "outage_s": outage, "trials": trials,
            "recovery_node_to_centre_s": percentiles(up_times), "recovery_centre_to_node_s": percentiles(down_times),
            "recovery_both_ways_s": percentiles(both)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--outage", type=float, default=30.0, help="seconds of each blackhole (default 30)")
    args = parser.parse_args()
    check_privileges()
    with tempfile.TemporaryDirectory(prefix="cabinet-node-bench-") as tmp:
        figures = asyncio.run(run(args.trials, args.outage, Path(tmp)))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
