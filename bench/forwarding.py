"""Forwarding benchmark of Cabinet's SFU: CPU per forwarded packet, loss and added delay, against
aiortc's MediaRelay (decode once, encode per subscriber) and/or Janus (C, VideoRoom) measured in the
same invocation with the same load generator.

    .venv/bin/python bench/forwarding.py --publishers 2 --subscribers 4 --seconds 10 --json
    .venv/bin/python bench/forwarding.py --publishers 4 --subscribers 20 --baseline janus --json
    .venv/bin/python bench/forwarding.py --scenario cabinet --seconds 20 --json

Processes: the SFU runs alone in its own process (bench/sfu_server.py with media.Router, or
aiortc + MediaRelay for the baseline; for ``--scenario cabinet`` by default the real ``cabinet
serve`` with socket.io signaling). The load (bench/loadgen/) runs in other processes:
pre-encoded VP8/Opus, neutralized aiortc senders, subscribers that never decode. The SFU's CPU
time is read from /proc/<pid>/stat right before and after the measured window (warm-up
excluded); forwarded packets are the SFU's own counters over the same window.

Janus (bench/janus_target.py; needs root and ``apt-get install janus``) runs in a network namespace
of its own; it has no counters, so its forwarded packets are counted at the subscribers (received +
gaps); ``janus_ratio`` compares that figure for both (ours over Janus: lower is better, goal <= 0.5).

Figures:
  * us_per_forwarded_packet: SFU CPU time / packets it sent to subscribers;
  * forwarded_pps, sfu_cpu_percent (of one core);
  * loss_percent: from sequence-number gaps at the subscribers (no NACK/RTX: raw loss);
  * added_delay_ms_p50/p99: subscriber arrival minus publisher send time (same clock). Cabinet
    forwards the payload untouched, so each packet carries its send time in a trailer (every
    packet, audio and video). The baseline re-encodes, so its delay is per video frame (first
    packet of the frame), matched through the RTP timestamps (see bench/loadgen/rtp.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cabinet_target import BenchSfu, CabinetServer  # noqa: E402
from bench.janus_target import JanusTarget, JanusUnavailable  # noqa: E402
from bench.measured_run import run  # noqa: E402
from bench.procs import machine  # noqa: E402

TARGET_US_PER_PACKET = 15.0
TARGET_RATIO = 30.0
TARGET_JANUS_RATIO = 0.5  # ours / Janus, us per forwarded packet
FIGURES = ("us_per_forwarded_packet", "forwarded_pps", "loss_percent", "added_delay_ms_p50", "added_delay_ms_p99")
TARGET_LOSS_PERCENT = 0.5
TARGET_P99_MS = 20.0



# -- scenarios ---------------------------------------------------------------------------------


def pair_sites(publishers: int, subscribers: int) -> list[dict[str, Any]]:
    sites = [{"name": f"pub{i}", "audio": True, "video": True, "subscribe": False, "speaking": True}
             for i in range(publishers)]
    sites += [{"name": f"sub{i}", "audio": False, "video": False, "subscribe": True, "last_n": 64}
              for i in range(subscribers)]
    return sites


def cabinet_sites(count: int, speakers: int) -> list[dict[str, Any]]:
    return [{"name": f"site{i:02d}", "audio": True, "video": True, "subscribe": True, "speaking": i < speakers}
            for i in range(count)]


def verdict_pairs(ours: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    us = ours.get("us_per_forwarded_packet")
    if us is not None:
        out["us_per_packet_target"] = TARGET_US_PER_PACKET
        out["us_per_packet_met"] = us <= TARGET_US_PER_PACKET
        if us > TARGET_US_PER_PACKET:
            out["us_per_packet_over_by_percent"] = round(100 * (us / TARGET_US_PER_PACKET - 1), 1)
    if baseline is not None and us and baseline.get("us_per_forwarded_packet"):
        ratio = baseline["us_per_forwarded_packet"] / us
        out["ratio_target"] = TARGET_RATIO
        out["ratio_met"] = ratio >= TARGET_RATIO
        if ratio < TARGET_RATIO:
            out["ratio_short_by_factor"] = round(TARGET_RATIO / ratio, 2)
    return out


def verdict_janus(ours: dict[str, Any], janus: dict[str, Any]) -> dict[str, Any]:
    """Ours over Janus, both counted at the subscribers (Janus has no counters)."""
    mine, theirs = ours.get("us_per_packet_subscriber_side"), janus.get("us_per_packet_subscriber_side")
    if not mine or not theirs:
        return {}
    ratio = mine / theirs
    out: dict[str, Any] = {"janus_ratio": round(ratio, 3), "janus_ratio_target": TARGET_JANUS_RATIO,
                           "janus_ratio_met": ratio <= TARGET_JANUS_RATIO}
    if ratio > TARGET_JANUS_RATIO:
        out["janus_ratio_over_by_factor"] = round(ratio / TARGET_JANUS_RATIO, 2)
    return out


def verdict_cabinet(result: dict[str, Any]) -> dict[str, Any]:
    loss = result.get("loss_percent")
    p99 = result.get("added_delay_ms_p99")
    carried = loss is not None and p99 is not None and loss < TARGET_LOSS_PERCENT and p99 < TARGET_P99_MS
    out = {"carried": carried, "loss_target_percent": TARGET_LOSS_PERCENT, "p99_target_ms": TARGET_P99_MS}
    if loss is not None and loss >= TARGET_LOSS_PERCENT:
        out["loss_over_target_by_points"] = round(loss - TARGET_LOSS_PERCENT, 3)
    if p99 is not None and p99 >= TARGET_P99_MS:
        out["p99_over_target_by_ms"] = round(p99 - TARGET_P99_MS, 2)
    us = result.get("us_per_forwarded_packet")
    if us is not None:
        out["us_per_packet_met"] = us <= TARGET_US_PER_PACKET
    return out


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"benchmark": "forwarding", "machine": machine(), "scenario": args.scenario}
    profile = Path(args.profile) if args.profile else None
    if args.scenario == "pairs":
        sites = pair_sites(args.publishers, args.subscribers)
        report["config"] = {"publishers": args.publishers, "subscribers": args.subscribers,
                            "seconds": args.seconds, "warmup": args.warmup,
                            "media": "per publisher: VP8 640x360 15 fps ~500 kbit/s + Opus 50 pps",
                            "baseline": "aiortc MediaRelay: decode once, encode per subscriber"
                            if args.baseline in ("relay", "both") else None}
        ours = await run(BenchSfu("router"), [dict(s) for s in sites], gen_procs=args.gen_procs,
                         seconds=args.seconds, warmup=args.warmup, measure_delay="trailer", trailer=True,
                         profile=profile)
        report["ours"] = ours
        baseline = None
        if args.baseline in ("relay", "both"):
            baseline = await run(BenchSfu("relay"), [dict(s) for s in sites], gen_procs=args.gen_procs,
                                 seconds=args.seconds, warmup=args.warmup, measure_delay="frames", trailer=False)
            report["baseline"] = baseline
            if ours.get("us_per_forwarded_packet") and baseline.get("us_per_forwarded_packet"):
                report["ratio"] = round(baseline["us_per_forwarded_packet"] / ours["us_per_forwarded_packet"], 1)
        for key in FIGURES:
            report[key] = ours.get(key)
            if baseline is not None:
                report[f"baseline_{key}"] = baseline.get(key)
        report["targets"] = verdict_pairs(ours, baseline)
        if args.baseline in ("janus", "both"):
            report["config"]["janus"] = "Janus VideoRoom (HTTP API) in a network namespace, same load generator"
            janus = await run(JanusTarget(publishers=max(8, 2 * args.publishers)), [dict(s) for s in sites],
                              gen_procs=args.gen_procs, seconds=args.seconds, warmup=args.warmup,
                              measure_delay="trailer", trailer=True)
            report["janus"] = janus
            for key in FIGURES:
                report[f"janus_{key}"] = janus.get(key)
            report["us_per_packet_subscriber_side"] = ours.get("us_per_packet_subscriber_side")
            report["janus_us_per_packet_subscriber_side"] = janus.get("us_per_packet_subscriber_side")
            verdict = verdict_janus(ours, janus)
            report["janus_ratio"] = verdict.get("janus_ratio")
            report["targets"].update(verdict)
    else:
        audio = "all 50 pps" if args.all_speak else f"{args.speakers} speakers 50 pps, others DTX every 400 ms"
        report["config"] = {"sites": args.sites, "last_n": 9, "seconds": args.seconds, "warmup": args.warmup,
                            "server": args.server, "audio": audio,
                            "setup_workaround": None if args.server == "real" else
                            "bench server recomputes last-N once per subscribe (see bench/sfu_server.py)",
                            "media": "per site: VP8 640x360 15 fps ~500 kbit/s + Opus"}
        sites = cabinet_sites(args.sites, args.sites if args.all_speak else args.speakers)
        with tempfile.TemporaryDirectory(prefix="cabinet-bench-") as tmp:
            sfu: Any = CabinetServer(Path(tmp)) if args.server == "real" else BenchSfu("router", "--defer-last-n")
            result = await run(sfu, sites, gen_procs=args.gen_procs, seconds=args.seconds, warmup=args.warmup,
                               measure_delay="trailer", trailer=True, profile=profile)
        report["cabinet"] = result
        for key in ("us_per_forwarded_packet", "forwarded_pps", "loss_percent", "added_delay_ms_p50",
                    "added_delay_ms_p99", "sfu_cpu_percent"):
            report[key] = result.get(key)
        report["targets"] = verdict_cabinet(result)
    report["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["pairs", "cabinet"], default="pairs")
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds after negotiation, not measured")
    parser.add_argument("--gen-procs", type=int, default=None,
                        help="load generator processes (default 2; 3 for --scenario cabinet)")
    parser.add_argument("--baseline", choices=["relay", "janus", "both", "none"], default="relay",
                        help="pairs scenario: aiortc MediaRelay (default), Janus VideoRoom (needs root and "
                             "apt-get install janus), both, or none")
    parser.add_argument("--no-baseline", action="store_true", help="skip the MediaRelay baseline run")
    parser.add_argument("--sites", type=int, default=50, help="cabinet scenario: sites")
    parser.add_argument("--speakers", type=int, default=2, help="cabinet scenario: active speakers")
    parser.add_argument("--all-speak", action="store_true", help="cabinet scenario worst case: 50 pps audio everywhere")
    parser.add_argument("--server", choices=["real", "bench"], default="real",
                        help="cabinet scenario: the real cabinet server with signaling, or bench/sfu_server.py")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the SFU during the window (needs py-spy in the venv)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.gen_procs is None:
        args.gen_procs = 3 if args.scenario == "cabinet" else 2
    if args.no_baseline:
        args.baseline = {"both": "janus", "janus": "janus"}.get(args.baseline, "none")
    if args.scenario == "pairs" and args.baseline in ("janus", "both"):
        try:
            JanusTarget()  # checks that Janus can run here before anything is measured
        except JanusUnavailable as exc:
            print(f"forwarding.py: {exc}", file=sys.stderr)
            return 2
    report = asyncio.run(amain(args))
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
