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

#: What ``--perf`` counts in the SFU process during the window (per forwarded packet, compared A/B).
PERF_EVENTS = ("task-clock", "context-switches", "raw_syscalls:sys_enter", "syscalls:sys_enter_sendto",
               "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_getpid")


def start_perf(out: Path, pid: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """``perf stat`` (PERF_EVENTS, to ``out/sfu.perf-stat``) and ``perf record -g`` (``out/sfu.perf.data``)
    of ``pid`` for ``seconds``; nothing when perf is missing."""
    perf = shutil.which("perf")
    if perf is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    commands = [
        ["stat", "-x", ",", "-o", str(out / "sfu.perf-stat"), "-e", ",".join(PERF_EVENTS)],
        ["record", "-F", "499", "-g", "-o", str(out / "sfu.perf.data")],
    ]
    return [subprocess.Popen([perf, *command, "-p", str(pid), "--", "sleep", str(seconds)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for command in commands]


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


def _offers(events: list[dict[str, Any]]) -> dict[str, int]:
    return {name: n for event in events for name, n in event.get("offers", {}).items()}


def _join_phase(published: list[dict[str, Any]], ready: list[dict[str, Any]], pause: float) -> dict[str, Any]:
    """The initial joins: first join request until every site receives its expected video streams."""
    first_join = min(event["join_at"] for event in published)
    sites = {name: site for event in ready for name, site in event["sites"].items()}
    ready_at = [site["ready_at"] for site in sites.values() if site["ready_at"] is not None]
    keyframes = [site["first_keyframe_at"] - first_join for site in sites.values() if site["first_keyframe_at"]]
    offers = [site["offers"] for site in sites.values()]
    return {
        "sites": len(sites),
        "sites_receiving_expected_video": len(ready_at),
        "all_subscribed_seconds": round(max(ready_at) - first_join, 2) if len(ready_at) == len(sites) else None,
        "last_site_receiving_seconds": round(max(ready_at) - first_join, 2) if ready_at else None,
        "scripted_subscribe_pauses_seconds": round(pause * len(sites), 1),
        "first_remote_keyframe_seconds_max": round(max(keyframes), 2) if keyframes else None,
        "video_streams_per_site": [min(s["video_streams"] for s in sites.values()),
                                   max(s["video_streams"] for s in sites.values())] if sites else None,
        "audio_streams_per_site": [min(s["audio_streams"] for s in sites.values()),
                                   max(s["audio_streams"] for s in sites.values())] if sites else None,
        "video_slots_named_per_site": [min(s.get("video_slots_named", 0) for s in sites.values()),
                                       max(s.get("video_slots_named", 0) for s in sites.values())] if sites else None,
        "slot_events": sum(s.get("slot_events", 0) for s in sites.values()),
        # Renegotiations: server ``offer`` events (the subscribe's own offer is not one); the slots
        # protocol has none, so 0 is expected.
        "offers_to_sites": sum(offers),
        "offers_per_site": [min(offers), max(offers)] if offers else None,
    }


async def _late_join(sfu: Any, gens: list[Proc], site: dict[str, Any], logdir: Path, logs: list[Any], *,
                     measure_delay: str, trailer: bool, expect_video: int) -> dict[str, Any]:
    """Site N+1 joins the running session (media flowing): its join request until its first remote
    video packet and keyframe; the ``offer`` events the sites already in the session receive meanwhile
    (counted until no new one for 3 s)."""
    for gen in gens:
        gen.send("offers")
    before = _offers(await asyncio.gather(*(g.event("offers", 30) for g in gens)))
    log = open(logdir / "loadgen-late.log", "wb")  # noqa: SIM115 - closed by the caller
    logs.append(log)
    load = os.getloadavg()[0]
    late = await Proc.start("loadgen-late", PYTHON, "-m", "bench.loadgen", stderr=log)
    gens.append(late)  # stopped with the others
    late.send(json.dumps({"control": sfu.control, "url": sfu.url, "sites": [site], "late": True,
                          "expect_video": expect_video, "measure_delay": measure_delay, "trailer": trailer,
                          **getattr(sfu, "loadgen_config", {})}))
    event = await _checked(late.event("late", 180), logdir)
    after = before
    stable_since = time.monotonic()
    deadline = time.monotonic() + 90
    while time.monotonic() - stable_since < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        for gen in gens[:-1]:
            gen.send("offers")
        now = _offers(await asyncio.gather(*(g.event("offers", 30) for g in gens[:-1])))
        if now != after:
            after, stable_since = now, time.monotonic()
    me = event["sites"][site["name"]]
    join_at = event["join_at"]
    return {
        "site": site["name"],
        "first_video_packet_seconds": round(me["first_video_at"] - join_at, 3) if me["first_video_at"] else None,
        # The server starts a video slot's source on a keyframe (media/slot.py: a switch takes effect at
        # the new source's keyframe): its first        # packet is the start of a decodable frame. Cross-check: the first packet the load generator
        # itself decrypted and read as a VP8 keyframe start.
        "first_remote_frame_seconds": round(me["first_video_at"] - join_at, 3) if me["first_video_at"] else None,
        "first_remote_frame_is": "first remote video packet (a keyframe start: slots start a source on a keyframe)",
        "first_keyframe_read_seconds": round(me["first_keyframe_at"] - join_at, 3) if me["first_keyframe_at"] else None,
        # Where the time went: joined and published, the subscribe's offer answered, the receiving
        # connection up (ICE + DTLS); from there to the first packet the slot waits for a keyframe.
        "phases_seconds": {name: round(event[key] - join_at, 3) if event.get(key) else None
                           for name, key in (("published", "published_at"), ("subscribe_answered", "answered_at"),
                                             ("recv_connected", "recv_connected_at"))},
        "keyframe_check_error": me.get("keyframe_check_error"),
        "video_streams": me["video_streams"],
        "video_slots_named": me.get("video_slots_named"),
        "offers_to_others": sum(after.values()) - sum(before.values()),
        "others_receiving_an_offer": sum(1 for name, n in after.items() if n != before.get(name, 0)),
        "others": len(after),
        "offers_to_late_site": me["offers"],
        "loadavg_1min": round(load, 2),
    }


async def run(sfu: Any, sites: list[dict[str, Any]], *, gen_procs: int, seconds: float, warmup: float,
              measure_delay: str, trailer: bool, profile: Path | None = None, perf: Path | None = None,
              expect_video: int = 0,
              late_site: dict[str, Any] | None = None, subscribe_pause: float | None = None,
              staggered: bool = False) -> dict[str, Any]:
    """``expect_video``: remote video streams each subscribing site should receive (its last-N); when
    set, the join figures are measured (first join request until every site receives them, offers
    received by the sites meanwhile). ``late_site``: a site that joins the running session after
    the window (its join request until its first remote keyframe; offers the others receive)."""
    logdir = Path(tempfile.mkdtemp(prefix="cabinet-bench-logs-"))
    logs: list[Any] = []
    await sfu.start()
    gens: list[Proc] = []
    profiler: subprocess.Popen[bytes] | None = None
    perfs: list[subprocess.Popen[bytes]] = []
    try:
        count = len(sites) + (1 if late_site is not None else 0)
        tokens = await sfu.mint_tokens(count) if hasattr(sfu, "mint_tokens") else [None] * count
        if late_site is not None:
            late_site["token"] = tokens.pop()
        for site, token in zip(sites, tokens, strict=True):
            site["token"] = token
        if subscribe_pause is None:
            # Was 1.5 s above 20 sites while every subscribe renegotiated every site (the generators'
            # publishing connections lost ICE consent otherwise); with slots (one 13-m-line offer per
            # subscribe, no renegotiation) 50 sites subscribe back to back with every connection up.
            subscribe_pause = 0.0
        join: dict[str, Any] = {}
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
                                 "subscribe_pause": subscribe_pause, "expect_video": expect_video,
                                 "staggered": staggered,
                                 "measure_delay": measure_delay, "trailer": trailer,
                                 **getattr(sfu, "loadgen_config", {})}))
            gens.append(gen)
        setup_start = time.monotonic()
        published = await _checked(asyncio.gather(*(g.event("published", 1500 if staggered else 300) for g in gens)),
                                   logdir)
        published_at = time.monotonic()
        subscribed = []
        for gen in reversed(gens):  # one after the other (see subscribe_pause); publishers' last
            gen.send("subscribe")
            subscribed.append(await _checked(gen.event("subscribed", 1500), logdir))
        subscribed_at = time.monotonic()
        if expect_video:
            for gen in gens:
                gen.send("ready")
            ready = await asyncio.gather(*(g.event("ready", 200) for g in gens))
            join["initial"] = _join_phase(published, ready, subscribe_pause)
            join["initial"]["join_order"] = ("staggered: each site joins, publishes, subscribes in turn" if staggered
                                             else "all sites join and publish, then subscribe one after the other")
            join["load_1min_after_joins"] = round(os.getloadavg()[0], 2)
        await asyncio.sleep(warmup)
        stats0 = await sfu.stats()
        for gen in gens:
            gen.send("start")
        await asyncio.gather(*(g.event("started", 30) for g in gens))
        cpu0, t0, busy0 = proc_cpu_seconds(sfu.pid), time.monotonic(), machine_busy_seconds()
        load_before = os.getloadavg()[0]
        py_spy = shutil.which("py-spy", path=str(Path(PYTHON).parent)) or shutil.which("py-spy")
        if profile is not None and py_spy is not None:
            profile.mkdir(parents=True, exist_ok=True)
            profiler = subprocess.Popen(
                [py_spy, "record", "--pid", str(sfu.pid), "--duration",
                 str(int(seconds)), "--rate", "200", "--format", "raw", "--nonblocking",
                 "--output", str(profile / "sfu.folded")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        if perf is not None:
            perfs = start_perf(perf, sfu.pid, seconds)
        await asyncio.sleep(seconds)
        cpu1, t1, busy1 = proc_cpu_seconds(sfu.pid), time.monotonic(), machine_busy_seconds()
        for gen in gens:
            gen.send("stop")
        results = await asyncio.gather(*(g.event("result", 120) for g in gens))
        stats1 = await sfu.stats()
        if late_site is not None:
            try:
                join["late"] = await _late_join(sfu, gens, late_site, logdir, logs, measure_delay=measure_delay,
                                                trailer=trailer, expect_video=expect_video)
            except Exception as exc:  # noqa: BLE001 - the window's figures stand; the failure is reported
                join["late"] = {"error": f"{type(exc).__name__}: {exc}"}
        for gen in gens:
            gen.send("quit")
        for tool in ([profiler] if profiler is not None else []) + perfs:
            try:
                tool.wait(timeout=30)
            except subprocess.TimeoutExpired:
                tool.kill()
                tool.wait()
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
        "window_monotonic": [round(t0, 3), round(t1, 3)],
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
        # The SFU's CPU over the load generator's, same window, same packets: on this shared VM whole
        # windows run 40-60 % slower for both (steal does not show it), and this ratio cancels that.
        "sfu_cpu_per_loadgen_cpu": round(cpu / gen_cpu, 3) if gen_cpu else None,
        "loadgen_processes": len(gens),
        "loadavg_1min": round(load_before, 2),
        "machine_busy_percent": round(100 * (busy1 - busy0) / elapsed, 1),
        "other_processes_cpu_percent": round(100 * ((busy1 - busy0) - cpu - gen_cpu) / elapsed, 1),
        "connections": {"after_publish": _merge_states(published), "after_subscribe": _merge_states(subscribed),
                        "after_window": _merge_states(results)},
        "setup_seconds": {"publish": round(published_at - setup_start, 1),
                          "subscribe": round(subscribed_at - published_at, 1)},
    }
    if join:
        out["join"] = join
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
    out["loadgen_loops"] = [r.get("loop") for r in results]  # each generator's own stalls in the window
    out["loadgen_anomalies"] = {k: sum(r[k] for r in results)
                                for k in ("unknown", "trailer_missing", "unprotect_errors", "send_failures")}
    extra = {k: stats1[k] - stats0.get(k, 0) for k in ("retransmitted", "send_failures", "received") if k in stats1}
    if extra:
        out["sfu_counters"] = extra
    return out
