#!/usr/bin/env python3
"""Churn (issue 11): clients join, publish and leave for a while beside long-lived subscribers.

    .venv/bin/python bench/churn.py --seconds 300 --clients 30 --concurrent 6 --json

The real server (``cabinet serve``, demo data, a temporary data directory) runs in its own process;
``--clients`` accounts publish (pre-encoded audio + video bots, speaking) in turns, at most
``--concurrent`` at a time, each for 2-6 s, round robin over the accounts until ``--seconds``; two
long-lived subscribers (lean bots, default slots) stay throughout. Figures:

* the server's resident memory (VmRSS) before the churn (after one warm-up round, so first-use
  allocations such as codec tables are not counted as growth), at its peak, and after the churn once
  the server settled; ``rss_after_over_before`` (target <= 1.10);
* per long-lived subscriber: the publishers it saw in a slot (``slot`` events naming them) over the
  publishers that joined, the packets it kept receiving, the server offers after its join (0: slots
  are negotiated once) and whether its negotiated SDP changed;
* joins done, join failures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cabinet_target import CabinetServer
from bench.procs import machine
from bots.bot import Bot, BotOptions
from bots.media_files import MediaParams, PreEncodedMedia, load_media


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Accounts:
    """``count`` delegate accounts invited to the demo cabinet session; fresh join tokens on demand
    (a token is single-use, and every join of the churn needs one)."""

    def __init__(self, server: CabinetServer) -> None:
        self.server = server
        self.services: Any = None
        self.meeting_id = 0
        self.people: list[Any] = []

    async def create(self, count: int, prefix: str) -> list[int]:
        from cabinet.bootstrap import prepare
        from cabinet.config import load_config
        from meetings.policy import Caller

        if self.services is None:
            config = load_config(str(self.server.config_file), env={},
                                 cli_overrides={"server.data_dir": str(self.server.workdir / "data")})
            self.services = prepare(config, migrate=False).services()
        cli = Caller.cli()
        services = self.services
        meeting = next(m for m in await services.meetings.list_visible(cli) if m.kind.value == "cabinet_session")
        self.meeting_id = meeting.id
        offices = [o for o in await services.offices.list(cli) if o.kind.value in ("province", "capital", "ministry")]
        made = []
        for i in range(count):
            made.append(await services.people.create(
                cli, username=f"{prefix}{i:02d}", full_name=f"{prefix} {i}", office_id=offices[i % len(offices)].id,
                roles=["delegate"], password=secrets.token_urlsafe(18)))
        await services.meetings.invite(cli, meeting.id, person_ids=[p.id for p in made])
        start = len(self.people)
        self.people.extend(made)
        return list(range(start, start + count))

    def token(self, index: int) -> str:
        person = self.people[index]
        token, _ = self.services.meetings.signer.mint(meeting_id=self.meeting_id, person_id=person.id,
                                                      office_id=person.office_id,
                                                      roles=tuple(r.value for r in person.roles))
        return str(token)

    async def close(self) -> None:
        if self.services is not None:
            await self.services.db.dispose()


@dataclass
class Watcher:
    """A long-lived subscriber and what it saw."""

    bot: Bot
    seen: set[str] = field(default_factory=set)
    sdp: str = ""

    def on_event(self, name: str, data: Any) -> None:
        if name == "slot" and isinstance(data, dict) and data.get("participant_id"):
            self.seen.add(str(data["participant_id"]))

    def packets(self) -> int:
        subscriber = self.bot.subscriber
        return sum(c.packets for c in subscriber.counters) if subscriber is not None else 0

    def negotiated_sdp(self) -> str:
        subscriber = self.bot.subscriber
        pc = subscriber.peer_connection if subscriber is not None else None
        description = pc.remoteDescription if pc is not None else None
        return description.sdp if description is not None else ""


@dataclass
class ChurnResult:
    joins: int = 0
    join_failures: int = 0
    not_seen: dict[str, int] = field(default_factory=dict)
    publishers: list[str] = field(default_factory=list)


async def churn(url: str, accounts: Accounts, people: list[int], media: PreEncodedMedia, watchers: list[Watcher],
                *, seconds: float, concurrent: int, hold: tuple[float, float], seed: int = 7) -> ChurnResult:
    """Publish-and-leave bots, ``concurrent`` at a time, round robin over ``people``, until ``seconds``."""
    rng = random.Random(seed)
    result = ChurnResult()
    deadline = time.monotonic() + seconds
    queue = list(people)
    busy: set[int] = set()

    async def one(index: int) -> None:
        bot = Bot(BotOptions(url=url, token=accounts.token(index), name=f"churn-{index}", subscribe=False,
                             speaking=True, reconnect=False, bind_addresses=["127.0.0.1"]), media)
        try:
            await bot.start()
            await bot.wait_joined(15)
            pid = bot.client.participant_id
            assert pid is not None
            result.joins += 1
            result.publishers.append(pid)
            limit = time.monotonic() + 15
            while time.monotonic() < limit and not all(pid in w.seen for w in watchers):
                await asyncio.sleep(0.05)
            for w in watchers:
                if pid not in w.seen:
                    result.not_seen[w.bot.options.name] = result.not_seen.get(w.bot.options.name, 0) + 1
            await asyncio.sleep(rng.uniform(*hold))
        except Exception:  # noqa: BLE001 - counted; the churn goes on
            result.join_failures += 1
        finally:
            await bot.stop()
            busy.discard(index)

    tasks: set[asyncio.Task[None]] = set()
    while time.monotonic() < deadline:
        while len(tasks) < concurrent and time.monotonic() < deadline:
            index = next((i for i in queue if i not in busy), None)
            if index is None:
                break
            queue.remove(index)
            queue.append(index)
            busy.add(index)
            tasks.add(asyncio.ensure_future(one(index)))
        done, tasks = await asyncio.wait(tasks, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
        tasks = set(tasks)
    if tasks:
        await asyncio.gather(*tasks)
    return result


async def settle_rss(pid: int, seconds: float) -> float:
    """The server's RSS after ``seconds`` of quiet (the lowest of the last few samples)."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.5)
        samples.append(rss_mb(pid))
    return min(samples[-4:])


async def snapshot(pid: int, probe: Path, number: int) -> list[dict[str, Any]] | None:
    """Have the server (under bench/server_probe.py) dump tracemalloc snapshot ``number``; for the
    second, the 25 allocation sites (by traceback) that grew most since the first."""
    path = Path(f"{probe}.{number}.snapshot")
    os.kill(pid, signal.SIGUSR1)
    for _ in range(600):
        await asyncio.sleep(0.1)
        if path.exists() and path.stat().st_size:
            await asyncio.sleep(0.5)  # the dump is written in one go; let it finish
            break
    if number == 1:
        return None
    first = tracemalloc.Snapshot.load(f"{probe}.1.snapshot")
    second = tracemalloc.Snapshot.load(str(path))
    stats = second.compare_to(first, "traceback")
    return [{"kb": round(s.size_diff / 1024, 1), "count": s.count_diff,
             "where": [f"{f.filename.rsplit('/site-packages/', 1)[-1]}:{f.lineno}" for f in s.traceback][-8:]}
            for s in stats[:25]]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="cabinet-churn-"))
    tracing = Path(args.tracemalloc).resolve() / "probe.jsonl" if args.tracemalloc else None
    if tracing is not None:
        tracing.parent.mkdir(parents=True, exist_ok=True)
        os.environ["BENCH_PROBE_TRACEMALLOC"] = "16"
    probe = tracing or (workdir / "probe.jsonl" if args.malloc_trim else None)
    server = CabinetServer(workdir, loop_probe=probe)
    await server.start()
    accounts = Accounts(server)
    watchers: list[Watcher] = []
    peak = 0.0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, rss_mb(server.pid))
            await asyncio.sleep(0.5)

    sampler = asyncio.ensure_future(sample())
    try:
        media = await asyncio.to_thread(load_media, MediaParams(), args.cache_dir)
        people = await accounts.create(args.clients, "churn.site")
        stayers = await accounts.create(2, "churn.stay")
        for index in stayers:
            bot = Bot(BotOptions(url=server.url, token=accounts.token(index), name=f"stay-{index}", publish=False,
                                 lean=True, reconnect=False, bind_addresses=["127.0.0.1"]), media)
            watcher = Watcher(bot)
            bot.client.listeners.append(watcher.on_event)
            watchers.append(watcher)
            await bot.start()
            await bot.wait_joined(15)
        # Warm-up: one round of joins (first-use allocations are not churn growth).
        warm = await churn(server.url, accounts, people[: args.concurrent], media, watchers,
                           seconds=0.1, concurrent=args.concurrent, hold=(0.5, 1.0))
        for w in watchers:
            w.sdp = w.negotiated_sdp()
        before = await settle_rss(server.pid, args.settle)
        if tracing is not None:
            await snapshot(server.pid, tracing, 1)
        packets_before = [w.packets() for w in watchers]
        started = time.monotonic()
        result = await churn(server.url, accounts, people, media, watchers, seconds=args.seconds,
                             concurrent=args.concurrent, hold=(args.hold_min, args.hold_max))
        churn_seconds = time.monotonic() - started
        after = await settle_rss(server.pid, args.settle)
        growth = await snapshot(server.pid, tracing, 2) if tracing is not None else None
        trimmed = None
        if args.malloc_trim:
            os.kill(server.pid, signal.SIGUSR2)
            trimmed = await settle_rss(server.pid, 3)
        report: dict[str, Any] = {
            "machine": machine(),
            "clients": args.clients, "concurrent": args.concurrent, "seconds": round(churn_seconds, 1),
            "warmup_joins": warm.joins,
            "joins": result.joins, "join_failures": result.join_failures,
            "rss_before_mb": round(before, 1), "rss_peak_mb": round(peak, 1), "rss_after_mb": round(after, 1),
            "rss_after_over_before": round(after / before, 3),
            "subscribers": [
                {"name": w.bot.options.name,
                 "publishers_seen": sum(1 for p in result.publishers if p in w.seen),
                 "publishers": len(result.publishers),
                 "packets_during_churn": w.packets() - packets_before[i],
                 "offers_after_join": w.bot.client.offers_after_join,
                 "sdp_changed": w.negotiated_sdp() != w.sdp or not w.sdp,
                 "errors": list(w.bot.client.errors)}
                for i, w in enumerate(watchers)],
        }
        if growth is not None:
            report["tracemalloc_growth"] = growth
        if trimmed is not None:
            report["rss_after_malloc_trim_mb"] = round(trimmed, 1)
            report["rss_after_malloc_trim_over_before"] = round(trimmed / before, 3)
        return report
    finally:
        sampling = False
        sampler.cancel()
        for w in watchers:
            await w.bot.stop()
        await accounts.close()
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300.0, help="how long the churn lasts")
    parser.add_argument("--clients", type=int, default=30, help="accounts that join, publish and leave")
    parser.add_argument("--concurrent", type=int, default=6, help="publishing at the same time")
    parser.add_argument("--hold-min", type=float, default=2.0)
    parser.add_argument("--hold-max", type=float, default=6.0)
    parser.add_argument("--settle", type=float, default=8.0, help="quiet seconds before reading memory")
    parser.add_argument("--cache-dir", type=Path, default=None, help="pre-encoded bot media cache")
    parser.add_argument("--tracemalloc", metavar="DIR", help="run the server under bench/server_probe.py with "
                        "tracemalloc; report the allocation sites that grew during the churn (slower)")
    parser.add_argument("--malloc-trim", action="store_true", help="after the churn, have the server (under "
                        "bench/server_probe.py) call malloc_trim(0) and read its memory again")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
