"""Forwarding benchmark of Cabinet's SFU: CPU per forwarded packet, loss and added delay, against
aiortc's MediaRelay (decode once, encode per subscriber) measured in the same invocation.

    .venv/bin/python bench/forwarding.py --publishers 2 --subscribers 4 --seconds 10 --json
    .venv/bin/python bench/forwarding.py --scenario cabinet --seconds 20 --json

Processes: the SFU runs alone in its own process (bench/sfu_server.py with media.Router, or
aiortc + MediaRelay for the baseline; for ``--scenario cabinet`` by default the real ``cabinet
serve`` with socket.io signaling). The load (bench/loadgen.py) runs in other processes:
pre-encoded VP8/Opus, neutralized aiortc senders, subscribers that never decode. The SFU's CPU
time is read from /proc/<pid>/stat right before and after the measured window (warm-up
excluded); forwarded packets are the SFU's own counters over the same window.

Figures:
  * us_per_forwarded_packet: SFU CPU time / packets it sent to subscribers;
  * forwarded_pps, sfu_cpu_percent (of one core);
  * loss_percent: from sequence-number gaps at the subscribers (no NACK/RTX: raw loss);
  * added_delay_ms_p50/p99: subscriber arrival minus publisher send time (same clock). Cabinet
    forwards the payload untouched, so each packet carries its send time in a trailer (every
    packet, audio and video). The baseline re-encodes, so its delay is per video frame (first
    packet of the frame), matched through the RTP timestamps (see loadgen.video_ts_jitter).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")

TARGET_US_PER_PACKET = 15.0
TARGET_RATIO = 30.0
TARGET_LOSS_PERCENT = 0.5
TARGET_P99_MS = 20.0


# -- process helpers ---------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds spent (all cores) outside idle and iowait, from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu_model": model, "loadavg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process speaking JSON lines on stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name

    @classmethod
    async def start(cls, name: str, *argv: str, stderr: Any = None) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=stderr if stderr is not None else asyncio.subprocess.DEVNULL, cwd=str(ROOT),
            limit=256 * 1024 * 1024, start_new_session=True,
        )
        return cls(proc, name)

    async def line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            raise RuntimeError(f"{self.name} exited (code {await self.proc.wait()})")
        return raw.decode().strip()

    async def event(self, name: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = await self.line(max(0.1, deadline - time.monotonic()))
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if data.get("event") == name:
                return data  # type: ignore[no-any-return]

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")

    async def stop(self, grace: float = 15) -> None:
        if self.proc.returncode is not None:
            return
        try:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), grace)
        except (TimeoutError, ProcessLookupError):
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            await self.proc.wait()


# -- SFU processes -----------------------------------------------------------------------------


class BenchSfu:
    control = "http"

    def __init__(self, impl: str, *extra: str) -> None:
        self.impl = impl
        self.extra = extra
        self.proc: Proc | None = None
        self.url = ""

    async def start(self) -> None:
        self.proc = await Proc.start(f"sfu-{self.impl}", PYTHON, str(ROOT / "bench" / "sfu_server.py"),
                                     "--impl", self.impl, *self.extra)
        line = await self.proc.line(60)
        if not line.startswith("READY "):
            raise RuntimeError(f"SFU did not start: {line!r}")
        self.url = f"http://127.0.0.1:{line.split()[1]}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.proc.pid

    async def stats(self) -> dict[str, Any]:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.get(self.url + "/stats", timeout=aiohttp.ClientTimeout(total=30)) as response:
                return await response.json()  # type: ignore[no-any-return]

    def tokens(self, count: int) -> list[str | None]:
        return [None] * count

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()


class CabinetServer:
    """The real server (``cabinet serve``) with demo data in a temporary data directory."""

    control = "sio"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: Proc | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = workdir / "cabinet.toml"
        self.config_file.write_text(
            "[media]\nice_bind_addresses = [\"127.0.0.1\"]\n"
            "[signaling]\nmax_message_bytes = 1048576\nrate_per_second = 50.0\nrate_burst = 200\n"
            "[server]\nlog_level = \"INFO\"\n"
        )
        self.log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed in stop()

    async def start(self) -> None:
        self.proc = await Proc.start(
            "cabinet", PYTHON, "-c", "import sys; from cabinet.cli import main; sys.exit(main())",
            "serve", "--config", str(self.config_file), "--data-dir", str(self.workdir / "data"),
            "--host", "127.0.0.1", "--port", str(self.port), "--demo-if-empty", stderr=self.log,
        )
        deadline = time.monotonic() + 120
        try:
            while True:
                line = await self.proc.line(max(0.1, deadline - time.monotonic()))
                if "is running at" in line:
                    break
        except RuntimeError:
            self.log.flush()
            sys.stderr.write((self.workdir / "server.log").read_text(errors="replace")[-4000:])
            raise

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.proc.pid

    async def stats(self) -> dict[str, Any]:
        return {}

    async def mint_tokens(self, count: int) -> list[str]:
        """Join tokens for the demo cabinet session: site 0 is the chair, the others delegates."""
        from cabinet.bootstrap import prepare
        from cabinet.config import load_config
        from meetings.policy import Caller

        config = load_config(str(self.config_file), env={},
                             cli_overrides={"server.data_dir": str(self.workdir / "data")})
        runtime = prepare(config, migrate=False)
        services = runtime.services()
        cli = Caller.cli()
        try:
            chair = await services.people.find(cli, "chair")
            meeting = next(m for m in await services.meetings.list_visible(cli) if m.kind.value == "cabinet_session")
            offices = [o for o in await services.offices.list(cli) if o.kind.value in ("province", "capital", "ministry")]
            # One account per site, as in a real session (the server keeps one connection per person).
            people = [chair]
            for i in range(1, count):
                people.append(await services.people.create(
                    cli, username=f"bench.site{i:02d}", full_name=f"Bench site {i}",
                    office_id=offices[i % len(offices)].id, roles=["delegate"], password=secrets.token_urlsafe(18)))
            await services.meetings.invite(cli, meeting.id, person_ids=[p.id for p in people[1:]])
            tokens = []
            for person in people:
                token, _ = services.meetings.signer.mint(meeting_id=meeting.id, person_id=person.id,
                                                         office_id=person.office_id,
                                                         roles=tuple(r.value for r in person.roles))
                tokens.append(token)
            return tokens
        finally:
            await services.db.dispose()

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()
        self.log.close()
        keep = os.environ.get("CABINET_BENCH_LOGS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.workdir / "server.log", Path(keep) / "server.log")


# -- one measured run --------------------------------------------------------------------------


def percentile_from_hist(hist: dict[int, int], bin_ns: int, q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    target = q * total
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= target:
            return (index + 0.5) * bin_ns / 1e6
    return None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def match_frames(received: list[tuple[int, int]], sent: list[tuple[int, int]], run: int = 8) -> list[float]:
    """Delays (ms) of received video frames (RTP timestamp, arrival ns) against sent frames (RTP
    timestamp, send ns) when the server re-encoded them: its output timestamps carry an unknown
    offset (and aiortc's decode/encode drifts them by a tick or two per frame). The sent frame
    steps have a signature (loadgen.video_ts_jitter): a run of ``run`` received steps that occurs
    exactly once among the sent steps anchors the match, which then walks forward re-anchoring on
    every matched frame."""
    if len(sent) <= run or len(received) <= run:
        return []

    def symbol(step: int) -> int | None:
        step = _signed(step)
        return round((step - 6000) / 300) if 4000 < step < 8000 else None

    sent_symbols = [symbol(sent[i + 1][0] - sent[i][0]) for i in range(len(sent) - 1)]
    positions: dict[tuple[int | None, ...], list[int]] = {}
    for i in range(len(sent_symbols) - run + 1):
        positions.setdefault(tuple(sent_symbols[i : i + run]), []).append(i)
    anchor = None
    for j in range(len(received) - run):
        pattern = tuple(symbol(received[j + m + 1][0] - received[j + m][0]) for m in range(run))
        if None in pattern:
            continue
        found = positions.get(pattern, [])
        if len(found) == 1:
            anchor = (j, found[0])
            break
    if anchor is None:
        return []
    j, i = anchor
    offset = received[j][0] - sent[i][0]
    delays = []
    for ts, arrival in received[j:]:
        target = ts - offset
        while i < len(sent) and _signed(target - sent[i][0]) > 1500:
            i += 1
        if i >= len(sent):
            break
        if abs(_signed(target - sent[i][0])) <= 1500:
            delays.append((arrival - sent[i][1]) / 1e6)
            offset = ts - sent[i][0]
    return delays


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
            gen = await Proc.start(f"loadgen-{i}", PYTHON, str(ROOT / "bench" / "loadgen.py"), stderr=log)
            gen.send(json.dumps({"control": sfu.control, "url": sfu.url, "sites": group,
                                 "subscribe_pause": 1.5 if len(sites) > 20 else 0.0,
                                 "measure_delay": measure_delay, "trailer": trailer}))
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
                            "baseline": "aiortc MediaRelay: decode once, encode per subscriber"}
        ours = await run(BenchSfu("router"), [dict(s) for s in sites], gen_procs=args.gen_procs,
                         seconds=args.seconds, warmup=args.warmup, measure_delay="trailer", trailer=True,
                         profile=profile)
        report["ours"] = ours
        baseline = None
        if not args.no_baseline:
            baseline = await run(BenchSfu("relay"), [dict(s) for s in sites], gen_procs=args.gen_procs,
                                 seconds=args.seconds, warmup=args.warmup, measure_delay="frames", trailer=False)
            report["baseline"] = baseline
            if ours.get("us_per_forwarded_packet") and baseline.get("us_per_forwarded_packet"):
                report["ratio"] = round(baseline["us_per_forwarded_packet"] / ours["us_per_forwarded_packet"], 1)
        for key in ("us_per_forwarded_packet", "forwarded_pps", "loss_percent", "added_delay_ms_p50",
                    "added_delay_ms_p99"):
            report[key] = ours.get(key)
            if baseline is not None:
                report[f"baseline_{key}"] = baseline.get(key)
        report["targets"] = verdict_pairs(ours, baseline)
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
    report = asyncio.run(amain(args))
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
