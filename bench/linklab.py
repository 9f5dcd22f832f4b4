"""The link lab relay's cost: CPU microseconds per relayed packet, and how many sites one core relays.

    .venv/bin/python bench/linklab.py                                   # the default runs, prints JSON
    .venv/bin/python bench/linklab.py --runs province@240 clean@3000 --seconds 20

Each run (``PROFILE@PPS``) creates one site; UDP probes send PPS packets per second each way (site ->
198.18.0.1 and back the other way, ``--size`` payload bytes, 1000 by default: 1028 B on the wire)
for ``--seconds``. The relay process's utime+stime (from /proc/<pid>/stat) over the window divided
by the packets it took in (both directions) is ``us_per_packet``. Per-packet cost falls as the rate
rises (more packets per wake-up), so capacity is computed from the runs at a site's real rate:
``province@240`` is a 2 Mbit/s site running flat out each way (240 x 1028 B x 8 = 1.97 Mbit/s),
``poor@115`` a 1 Mbit/s one. ``sites_per_core`` = one core / (that site's relay CPU share).
Needs root and /dev/net/tun.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from typing import Any

# This script is named like the package: keep its own directory off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

from linklab import Lab  # noqa: E402
from linklab.lab import check_privileges  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def probe(*args: str, prefix: list[str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*(prefix or []), sys.executable, "-m", "linklab", "probe", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def measure(lab: Lab, name: str, profile: str, pps: int, size: int, seconds: float, port: int) -> dict[str, Any]:
    site = await lab.add_site(name, profile, seed=1)
    assert site.process is not None
    receivers = [await probe("recv", "--bind", lab.server_address, "--port", str(port), "--seconds", str(seconds + 8),
                             "--idle", "1.5"),
                 await probe("recv", "--bind", site.address, "--port", str(port + 1), "--seconds", str(seconds + 8),
                             "--idle", "1.5", prefix=site.exec_args([]))]
    for r in receivers:
        await r.stdout.readline()  # type: ignore[union-attr]
    flood = ["--pps", str(pps), "--size", str(size), "--seconds", str(seconds)]
    senders = [await probe("send", "--to", f"{lab.server_address}:{port}", *flood, prefix=site.exec_args([])),
               await probe("send", "--to", f"{site.address}:{port + 1}", *flood)]
    await asyncio.sleep(0.5)  # past start-up
    before_cpu, before = cpu_seconds(site.process.pid), await site.counters()
    t0 = time.monotonic()
    await asyncio.sleep(seconds - 1.0)
    after_cpu, after = cpu_seconds(site.process.pid), await site.counters()
    window = time.monotonic() - t0
    for s in senders:
        await s.communicate()
    results = [json.loads((await r.communicate())[0].decode().splitlines()[-1]) for r in receivers]
    relayed = sum(after[d]["in_packets"] - before[d]["in_packets"] for d in ("uplink", "downlink"))
    cpu = after_cpu - before_cpu
    await lab.remove_site(name)
    return {
        "profile": profile, "offered_pps_each_way": pps, "payload_bytes": size, "window_s": round(window, 2),
        "relayed_pps": round(relayed / window), "relay_cpu_percent": round(100 * cpu / window, 1),
        "us_per_packet": round(1e6 * cpu / relayed, 1) if relayed else None,
        "received_each_way": [r["received"] for r in results],
        "delay_ms_p50_each_way": [round(r["delay_ms_p50"] or 0, 1) for r in results],
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    check_privileges()
    load_before = os.getloadavg()
    runs = []
    async with Lab() as lab:
        port = 47600
        for spec in args.runs:
            profile, _, pps = spec.rpartition("@")
            runs.append(await measure(lab, "bench", profile, int(pps), args.size, args.seconds, port))
            port += 2
    capacity = {}
    for r in runs:
        if r["relay_cpu_percent"] > 0:
            mbit = r["relayed_pps"] / 2 * (args.size + 28) * 8 / 1e6
            capacity[f"{r['profile']}@{r['offered_pps_each_way']}"] = {
                "mbit_each_way": round(mbit, 2), "us_per_packet": r["us_per_packet"],
                "sites_per_core": int(100 / r["relay_cpu_percent"])}
    return {
        "runs": runs,
        "sites_per_core": capacity,
        "machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", metavar="PROFILE@PPS",
                        default=["province@240", "poor@115", "clean@240", "province,rate_kbit=none@1000",
                                 "province,rate_kbit=none@3000"],
                        help="profile and offered packets/s each way, per run")
    parser.add_argument("--size", type=int, default=1000, help="UDP payload bytes")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
