"""One measured run: start a target SFU, start the load generators, publish, subscribe, warm up,
measure a window (the SFU process's CPU time from /proc, the generators' receive-side counts), stop
everything and reduce the results to figures."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.figures import match_frames, percentile, percentile_from_hist
from bench.procs import PYTHON, Proc, machine_busy_seconds, proc_cpu_seconds

def _merge_states(events: list[dict[str, Any]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for event in events:
        for key, count in event.get("states", {}).items():
            merged[key] = merged.get(key, 0) + count
    return merged


async def _checked(awaitable: Any, logdir: Path) -> Any:
    """Await a phase; on failure, show the load generators' logs (kept in ``logdir``)."""
    try:
        return await awaitable
    except Exception:
        for path in sorted(logdir.glob("*.log")):
            text = path.read_text(errors="replace")[-3000:]
            if text.strip():
                print(f"--- {path.name} (kept in {logdir})\n{text}", file=sys.stderr)
        raise


async def run(sfu: Any, sites: list[dict[str, Any]], *, gen_procs: int, seconds: float, warmup: float,
              measure_delay: str, trailer: bool, profile: Path | None = None) -> dict[str, Any]:
    logdir = Path(tempfile.mkdtemp(prefix="cabinet-bench-logs-"))
    logs: list[Any] = []
    await sfu.start()
    gens: list[Proc] = []
    profiler: subprocess.Popen[bytes] | None = None
    try:
        tokens = await sfu.mint_tokens(len(sites)) if hasattr(sfu, "mint_tokens") else [None] * len(sites)
        for site, token in zip(sites, tokens, strict=True):
            site["token"] = token
        if sfu.control == "http" and gen_procs > 1:
            # The bench control channel names participants freely: a site's publishing and subscribing
            # connections can live in different processes, so the subscribers' large offer/answer
            # work never stalls the publishers' event loop (ICE consent checks time out at ~0.5 s).
            split = []
            for site in sites:
                if site["subscribe"] and (site["audio"] or site["video"]):
                    split.append({**site, "subscribe": False})
                    split.append({**site, "audio": False, "video": False})
                else:
                    split.append(site)
            sites = split
        groups: list[list[dict[str, Any]]] = [[] for _ in range(gen_procs)]
        if any(not s["subscribe"] for s in sites) and gen_procs > 1:  # publishers apart from subscribers
            publishers = [s for s in sites if not s["subscribe"]]
            subscribers = [s for s in sites if s["subscribe"]]
            groups[0] = publishers
            for i, site in enumerate(subscribers):
                groups[1 + i % (gen_procs - 1)].append(site)
        else:
            for i, site in enumerate(sites):
                groups[i % gen_procs].append(site)
        for i, group in enumerate(g for g in groups if g):
            log = open(logdir / f"loadgen-{i}.log", "wb")  # noqa: SIM115 - closed below
            logs.append(log)
            gen = await Proc.start(f"loadgen-{i}", PYTHON, "-m", "bench.loadgen", stderr=log)
            gen.send(json.dumps({"control": sfu.control, "url": sfu.url, "sites": group,
                                 "subscribe_pause": 1.5 if len(sites) > 20 else 0.0,
                                 "measure_delay": measure_delay, "trailer": trailer,
                                 **getattr(sfu, "loadgen_config", {})}))
            gens.append(gen)
        setup_start = time.monotonic()
        published = await _checked(asyncio.gather(*(g.event("published", 300) for g in gens)), logdir)
        published_at = time.monotonic()
        subscribed = []
        for gen in reversed(gens):  # one after the other (see subscribe_pause); publishers' last
            gen.send("subscribe")
            subscribed.append(await _checked(gen.event("subscribed", 1500), logdir))
        subscribed_at = time.monotonic()
        await asyncio.sleep(warmup)
        stats0 = await sfu.stats()
        for gen in gens:
            gen.send("start")
        await asyncio.gather(*(g.event("started", 30) for g in gens))
        cpu0, t0, busy0 = proc_cpu_seconds(sfu.pid), time.monotonic(), machine_busy_seconds()
        load_before = os.getloadavg()[0]
        if profile is not None and shutil.which("py-spy", path=str(Path(PYTHON).parent)) is not None:
            profile.mkdir(parents=True, exist_ok=True)
            profiler = subprocess.Popen(
                [str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(sfu.pid), "--duration",
                 str(int(seconds)), "--rate", "200", "--format", "raw", "--nonblocking",
                 "--output", str(profile / "sfu.folded")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        await asyncio.sleep(seconds)
        cpu1, t1, busy1 = proc_cpu_seconds(sfu.pid), time.monotonic(), machine_busy_seconds()
        for gen in gens:
            gen.send("stop")
        results = await asyncio.gather(*(g.event("result", 120) for g in gens))
        stats1 = await sfu.stats()
        for gen in gens:
            gen.send("quit")
        if profiler is not None:
            try:
                profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                profiler.kill()
                profiler.wait()
    finally:
        for gen in gens:
            try:
                await asyncio.wait_for(gen.proc.wait(), 20)
            except TimeoutError:
                await gen.stop(5)
        await sfu.stop()
        for log in logs:
            log.close()
    keep = os.environ.get("CABINET_BENCH_LOGS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for path in logdir.glob("*.log"):
            shutil.copy(path, Path(keep) / path.name)
    shutil.rmtree(logdir, ignore_errors=True)
    elapsed = t1 - t0
    cpu = cpu1 - cpu0
    if os.environ.get("CABINET_BENCH_DUMP"):  # raw generator results, for debugging the benchmark
        Path(os.environ["CABINET_BENCH_DUMP"]).write_text(json.dumps(results))
    expected = {"audio": 0, "video": 0}
    received = {"audio": 0, "video": 0}
    hist: dict[str, dict[int, int]] = {"audio": {}, "video": {}}
    frames_sent: dict[str, list[tuple[int, int]]] = {}
    frames_received: dict[tuple[str, str], list[tuple[int, int]]] = {}
    gen_cpu = 0.0
    publisher_sent = 0
    for result in results:
        gen_cpu += result["cpu_seconds"]
        publisher_sent += sum(result["sent"].values())
        for stream in result["streams"]:
            expected[stream["kind"]] += stream["expected"]
            received[stream["kind"]] += stream["received"]
        for kind, h in result["hist"].items():
            for index, count in h.items():
                hist[kind][int(index)] = hist[kind].get(int(index), 0) + count
        for site, frames in result["frames_sent"].items():
            frames_sent[site] = [tuple(f) for f in frames]  # type: ignore[misc]
        for subscriber, publisher, ts, arrival in result["frames"]:
            frames_received.setdefault((subscriber, publisher), []).append((ts, arrival))
    bin_ns = results[0]["bin_ns"] if results else 50_000
    forwarded = stats1.get("forwarded", 0) - stats0.get("forwarded", 0)
    if not stats1:  # the real server exposes no counters: what the subscribers got, plus gaps
        forwarded = sum(expected.values())
    total_expected = sum(expected.values())
    out: dict[str, Any] = {
        "seconds": round(elapsed, 2),
        "sfu_cpu_seconds": round(cpu, 3),
        "sfu_cpu_percent": round(100 * cpu / elapsed, 1),
        "forwarded_packets": forwarded,
        "forwarded_pps": round(forwarded / elapsed, 1),
        "us_per_forwarded_packet": round(cpu * 1e6 / forwarded, 2) if forwarded else None,
        "published_pps": round(publisher_sent / elapsed, 1),
        # The same count for every target (Janus has no counters): received + gaps at the subscribers.
        "forwarded_packets_subscriber_side": total_expected,
        "us_per_packet_subscriber_side": round(cpu * 1e6 / total_expected, 2) if total_expected else None,
        "loss_percent": round(100 * (1 - sum(received.values()) / total_expected), 3) if total_expected else None,
        "loss_percent_audio": round(100 * (1 - received["audio"] / expected["audio"]), 3) if expected["audio"] else None,
        "loss_percent_video": round(100 * (1 - received["video"] / expected["video"]), 3) if expected["video"] else None,
        "loadgen_cpu_percent": round(100 * gen_cpu / elapsed, 1),
        "loadgen_processes": len(gens),
        "loadavg_1min": round(load_before, 2),
        "machine_busy_percent": round(100 * (busy1 - busy0) / elapsed, 1),
        "other_processes_cpu_percent": round(100 * ((busy1 - busy0) - cpu - gen_cpu) / elapsed, 1),
        "connections": {"after_publish": _merge_states(published), "after_subscribe": _merge_states(subscribed),
                        "after_window": _merge_states(results)},
        "setup_seconds": {"publish": round(published_at - setup_start, 1),
                          "subscribe": round(subscribed_at - published_at, 1)},
    }
    if measure_delay == "trailer":
        merged: dict[int, int] = {}
        for h in hist.values():
            for index, count in h.items():
                merged[index] = merged.get(index, 0) + count
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            value = percentile_from_hist(merged, bin_ns, q)
            out[f"added_delay_ms_{name}"] = round(value, 2) if value is not None else None
        for kind in ("audio", "video"):
            for name, q in (("p50", 0.5), ("p99", 0.99)):
                value = percentile_from_hist(hist[kind], bin_ns, q)
                out[f"added_delay_ms_{name}_{kind}"] = round(value, 2) if value is not None else None
        out["delay_measured_on"] = "every packet (send-time trailer)"
        out["delay_samples"] = sum(merged.values())
    elif measure_delay == "frames":
        delays: list[float] = []
        for (_, publisher), frames in frames_received.items():
            delays.extend(match_frames(frames, frames_sent.get(publisher, [])))
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            value = percentile(delays, q)
            out[f"added_delay_ms_{name}"] = round(value, 2) if value is not None else None
        out["delay_measured_on"] = "video frames (first packet), matched by RTP timestamp"
        out["delay_samples"] = len(delays)
    out["loadgen_anomalies"] = {k: sum(r[k] for r in results)
                                for k in ("unknown", "trailer_missing", "unprotect_errors", "send_failures")}
    extra = {k: stats1[k] - stats0.get(k, 0) for k in ("retransmitted", "send_failures", "received") if k in stats1}
    if extra:
        out["sfu_counters"] = extra
    return out
