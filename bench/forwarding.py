"""Forwarding benchmark of Cabinet's SFU: CPU per forwarded packet, loss and added delay, against
aiortc's MediaRelay (decode once, encode per subscriber) and/or Janus (C, VideoRoom) measured in the
same invocation with the same load generator.

    .venv/bin/python bench/forwarding.py --publishers 2 --subscribers 4 --seconds 10 --json
    .venv/bin/python bench/forwarding.py --publishers 4 --subscribers 20 --baseline janus --json
    .venv/bin/python bench/forwarding.py --scenario cabinet --seconds 20 --json
    .venv/bin/python bench/forwarding.py --scenario cabinet --sites 12 --seconds 10   # quick; human summary last

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

Join figures (``--scenario cabinet``, under ``cabinet.join``; outside the measured window). Every
site subscribes once with its slots (stage + 8 thumbnails + 2 extra voices; the one offer is in the
subscribe acknowledgement) and is never offered again; ``slot`` events name who each slot carries:
  * all_subscribed_seconds: the first join request until every site receives min(N - 1, 9) remote
    videos through its slots: packets on that many video slots and (real server) ``slot`` events
    naming who they carry (null when some never do; ``last_site_receiving_seconds`` is then for
    those that did). The default join order is the bench's (all join and publish, then one
    subscribe after the other, with no pause unless ``--subscribe-pause`` asks for one, reported and
    counted; the scripted 1.5 s above 20 sites of the renegotiating days is no longer the default);
    ``--join-order staggered`` has each site join, publish and subscribe in turn, as pages do;
  * offers_to_sites: server ``offer`` events the sites received meanwhile (0 with slots: the load
    generator counts them, never answers them);
  * late joiner (site N+1, after the window, media flowing): its join request (socket.io connect)
    until its first remote video packet (a slot starts a source on a keyframe), and
    ``offers_to_others`` received by the N sites already in the session (counted until none
    arrives for 3 s; 0 with slots).
``--loop-probe FILE`` runs the server under bench/server_probe.py: callbacks holding its event loop
>= 5 ms, GC pauses >= 2 ms and loop lag, summarized for the window under ``cabinet.loop_probe``.
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
TARGET_ALL_SUBSCRIBED_S = 10.0
TARGET_LATE_FIRST_FRAME_S = 1.5
LAST_N = 9



# -- scenarios ---------------------------------------------------------------------------------


def pair_sites(publishers: int, subscribers: int) -> list[dict[str, Any]]:
    sites = [{"name": f"pub{i}", "audio": True, "video": True, "subscribe": False, "speaking": True}
             for i in range(publishers)]
    # Every subscriber receives every publisher's audio and video (as Janus's subscribers do): the stage's
    # voice plus publishers - 1 extra audio slots (the SFU-only server allows up to 16).
    sites += [{"name": f"sub{i}", "audio": False, "video": False, "subscribe": True, "last_n": 64,
               "audios": min(16, max(0, publishers - 1))}
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
    mine_n, theirs_n = ours.get("sfu_cpu_per_loadgen_cpu"), janus.get("sfu_cpu_per_loadgen_cpu")
    if mine_n and theirs_n:
        # The same ratio with each SFU's CPU measured against the load generator's in its own window
        # (robust to the machine slowing down between the two windows).
        out["janus_ratio_loadgen_normalized"] = round(mine_n / theirs_n, 3)
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


def verdict_join(initial: dict[str, Any], late: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"all_subscribed_target_seconds": TARGET_ALL_SUBSCRIBED_S,
                           "late_first_frame_target_seconds": TARGET_LATE_FIRST_FRAME_S,
                           "offers_to_others_target": 0}
    all_s = initial.get("all_subscribed_seconds")
    if initial:
        out["all_subscribed_met"] = all_s is not None and all_s <= TARGET_ALL_SUBSCRIBED_S
    first = late.get("first_remote_frame_seconds")
    if late:
        out["late_first_frame_met"] = first is not None and first <= TARGET_LATE_FIRST_FRAME_S
        out["offers_to_others_met"] = late.get("offers_to_others") == 0
    return out


def summarize_probe(path: Path, t0: float, t1: float) -> dict[str, Any]:
    """The server's loop during the measured window (bench/server_probe.py's lines)."""
    callbacks: dict[str, list[float]] = {}
    gcs: list[float] = []
    lags: list[float] = []
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not t0 <= event["t"] <= t1:
            continue
        if event.get("lag"):
            lags.append(event["ms"])
        elif "gc" in event:
            gcs.append(event["ms"])
        else:
            callbacks.setdefault(event["what"], []).append(event["ms"])
    seconds = t1 - t0
    top = sorted(callbacks.items(), key=lambda kv: -sum(kv[1]))[:12]
    return {
        "file": str(path),
        "slow_callback_ms_threshold": 5.0,
        "loop_lag_max_ms": max(lags, default=0.0),
        "loop_lags_over_20ms": sum(1 for lag in lags if lag > 20),
        "loop_lag_over_5ms_seconds_per_second": round(sum(lags) / 1000 / seconds, 4),
        "slow_callbacks": sum(len(v) for v in callbacks.values()),
        "slow_callbacks_ms_per_second": round(sum(sum(v) for v in callbacks.values()) / seconds, 2),
        "top_slow_callbacks": [{"what": what, "count": len(v), "total_ms": round(sum(v), 1), "max_ms": max(v)}
                               for what, v in top],
        "gc_pauses_over_2ms": len(gcs),
        "gc_max_ms": max(gcs, default=0.0),
        "gc_ms_per_second": round(sum(gcs) / seconds, 2),
    }


def human(report: dict[str, Any]) -> str:
    """The figures that matter, one per line (the full report follows as JSON)."""
    lines = [f"machine: {report['machine'].get('cores')} cores, load {report['machine'].get('loadavg')}"
             f" -> {report['machine'].get('loadavg_after')}"]
    run_ = report.get("cabinet") or report.get("ours") or {}
    for key in FIGURES:
        if report.get(key) is not None:
            lines.append(f"{key}: {report[key]}")
    if run_.get("loadavg_1min") is not None:
        lines.append(f"load (1 min) at the window: {run_['loadavg_1min']}")
    join = run_.get("join", {})
    initial, late = join.get("initial"), join.get("late")
    if initial:
        lines.append(f"all {initial['sites']} sites subscribed (each receiving {min(report['config']['sites'] - 1, LAST_N)}"
                     f" remote videos): {initial['all_subscribed_seconds']} s after the first join request"
                     f" (of which scripted subscribe pauses {initial['scripted_subscribe_pauses_seconds']} s;"
                     f" target <= {TARGET_ALL_SUBSCRIBED_S} s; load {join.get('load_1min_after_joins')})")
        lines.append(f"  join order: {initial.get('join_order')}")
        lines.append(f"offers to sites already in the session during the initial joins: {initial['offers_to_sites']}"
                     f" (per site {initial['offers_per_site']}; slots: 0 expected); slot events"
                     f" {initial.get('slot_events')}, video slots named per site {initial.get('video_slots_named_per_site')}")
    if late and "error" in late:
        lines.append(f"late joiner: failed ({late['error']})")
    elif late:
        lines.append(f"late joiner {late['site']}: first remote frame {late['first_remote_frame_seconds']} s after its"
                     f" join request (first keyframe read by the generator {late['first_keyframe_read_seconds']} s; target <="
                     f" {TARGET_LATE_FIRST_FRAME_S} s; load {late['loadavg_1min']})")
        lines.append(f"offers to the {late['others']} others during the late join: {late['offers_to_others']}"
                     f" ({late['others_receiving_an_offer']} sites got one; target 0)")
    loops = [loop for loop in run_.get("loadgen_loops") or [] if loop]
    if loops:
        lines.append("load generators' own loops in the window: max lag "
                     + ", ".join(f"{loop['loop_lag_max_ms']}" for loop in loops) + " ms; lags > 20 ms "
                     + ", ".join(str(loop["loop_lags_over_20ms"]) for loop in loops) + "; GC max "
                     + ", ".join(f"{loop['gc_max_ms']}" for loop in loops) + " ms")
    probe = run_.get("loop_probe")
    if probe:
        lines.append(f"server loop in the window: max lag {probe['loop_lag_max_ms']} ms, {probe['loop_lags_over_20ms']} lags"
                     f" > 20 ms; callbacks >= 5 ms: {probe['slow_callbacks']} ({probe['slow_callbacks_ms_per_second']} ms/s);"
                     f" GC pauses >= 2 ms: {probe['gc_pauses_over_2ms']} (max {probe['gc_max_ms']} ms)")
        for item in probe["top_slow_callbacks"][:6]:
            lines.append(f"  {item['total_ms']:8.1f} ms in {item['count']:4d} x (max {item['max_ms']} ms) {item['what']}")
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"benchmark": "forwarding", "machine": machine(), "scenario": args.scenario}
    profile = Path(args.profile) if args.profile else None
    perf = Path(args.perf) if args.perf else None
    if args.scenario == "pairs":
        sites = pair_sites(args.publishers, args.subscribers)
        report["config"] = {"publishers": args.publishers, "subscribers": args.subscribers,
                            "seconds": args.seconds, "warmup": args.warmup,
                            "media": "per publisher: VP8 640x360 15 fps ~500 kbit/s + Opus 50 pps",
                            "baseline": "aiortc MediaRelay: decode once, encode per subscriber"
                            if args.baseline in ("relay", "both") else None}
        ours = await run(BenchSfu("router"), [dict(s) for s in sites], gen_procs=args.gen_procs,
                         seconds=args.seconds, warmup=args.warmup, measure_delay="trailer", trailer=True,
                         profile=profile, perf=perf)
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
                            "join_order": args.join_order, "server": args.server, "audio": audio,
                            "setup_workaround": None if args.server == "real" else
                            "bench server recomputes last-N once per subscribe (see bench/sfu_server.py)",
                            "media": "per site: VP8 640x360 15 fps ~500 kbit/s + Opus"}
        sites = cabinet_sites(args.sites, args.sites if args.all_speak else args.speakers)
        late = None
        if not args.no_late_join:
            late = cabinet_sites(args.sites + 1, 0)[-1]
            report["config"]["late_joiner"] = late["name"]
        with tempfile.TemporaryDirectory(prefix="cabinet-bench-") as tmp:
            probe = Path(args.loop_probe).resolve() if args.loop_probe else None
            if probe is not None:
                probe.unlink(missing_ok=True)
            sfu: Any = (CabinetServer(Path(tmp), loop_probe=probe) if args.server == "real"
                        else BenchSfu("router", "--defer-last-n"))
            result = await run(sfu, sites, gen_procs=args.gen_procs, seconds=args.seconds, warmup=args.warmup,
                               measure_delay="trailer", trailer=True, profile=profile, perf=perf,
                               expect_video=min(args.sites - 1, LAST_N), late_site=late,
                               subscribe_pause=args.subscribe_pause, staggered=args.join_order == "staggered")
            if probe is not None and probe.exists():
                result["loop_probe"] = summarize_probe(probe, *result["window_monotonic"])
        report["cabinet"] = result
        for key in ("us_per_forwarded_packet", "forwarded_pps", "loss_percent", "added_delay_ms_p50",
                    "added_delay_ms_p99", "sfu_cpu_percent"):
            report[key] = result.get(key)
        report["targets"] = verdict_cabinet(result)
        join = result.get("join", {})
        initial, late_join = join.get("initial", {}), join.get("late", {})
        report["all_subscribed_seconds"] = initial.get("all_subscribed_seconds")
        report["offers_during_initial_joins"] = initial.get("offers_to_sites")
        report["late_first_remote_frame_seconds"] = late_join.get("first_remote_frame_seconds")
        report["offers_to_others_during_late_join"] = late_join.get("offers_to_others")
        report["targets"].update(verdict_join(initial, late_join))
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
    parser.add_argument("--subscribe-pause", type=float, default=None,
                        help="cabinet scenario: seconds between two sites' subscribes (default 0; counted in the "
                             "join time). 1.5 above 20 sites was the default while every subscribe renegotiated "
                             "every site: the generators' own connections lost ICE consent without it")
    parser.add_argument("--join-order", choices=["bench", "staggered"], default="bench",
                        help="cabinet scenario: 'bench' (all publish, then subscribe one by one) or 'staggered' "
                             "(each site joins, publishes and subscribes in turn, as pages do)")
    parser.add_argument("--no-late-join", action="store_true",
                        help="cabinet scenario: skip the late joiner (site N+1 joining after the window)")
    parser.add_argument("--loop-probe", metavar="FILE",
                        help="cabinet scenario: run the server under bench/server_probe.py (slow callbacks, GC pauses, "
                             "loop lag to FILE) and summarize the measured window")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the SFU during the window (needs py-spy in the venv or on PATH)")
    parser.add_argument("--perf", metavar="DIR", help="perf stat (syscalls, context switches) and perf record -g of the "
                                                      "SFU during the window (needs perf; root)")
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
        print(human(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
