"""``python -m linklab``: rehearse a site's link (``site``), list ``profiles``, ``clean`` leftovers;
``relay`` and ``probe`` are the lab's own processes."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from . import probe, relay
from .errors import LinkLabError
from .lab import Lab, Site, clean_all
from .profiles import PROFILES, parse_profile


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m linklab",
                                     description="The link lab: emulated provincial links for rehearsing a site.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("profiles", help="list the link profiles")
    site = sub.add_parser(
        "site", help="create a site, run CMD in it, print the link's counters at exit",
        description="Create a site behind an emulated link and run CMD inside it (e.g. a bot with "
        "--url http://198.18.0.1:PORT); it sees LINKLAB_SITE_ADDRESS and LINKLAB_SERVER_ADDRESS. Without CMD, "
        "hold the site until Ctrl-C. SIGUSR1 toggles a blackhole.")
    site.add_argument("--name", default="site", help="site name (a-z, 0-9)")
    site.add_argument("--profile", default="province",
                      help="profile name, optionally with overrides: poor,rtt_ms=250,loss_pct=3 (default province)")
    site.add_argument("--seed", type=int, help="seed for loss and jitter (reproducible runs)")
    site.add_argument("--json", action="store_true", help="print the counters as JSON")
    site.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    clean = sub.add_parser("clean", help="remove namespaces left by labs that died")
    clean.add_argument("--all", action="store_true", help="also those of labs still running")
    relay.add_arguments(sub.add_parser("relay", help="(internal) one site's impairment relay"))
    probe.add_arguments(sub.add_parser("probe", help="UDP probes: echo, rtt, send, recv"))
    return parser


def format_counters(counters: dict[str, dict[str, int]]) -> str:
    lines = []
    for direction in ("uplink", "downlink"):
        c = counters[direction]
        dropped = ", ".join(f"{k.removeprefix('dropped_')} {v}" for k, v in c.items() if k.startswith("dropped_"))
        lines.append(f"{direction:8}: in {c['in_packets']} packets ({c['in_bytes']} B), delivered "
                     f"{c['delivered_packets']} ({c['delivered_bytes']} B); dropped: {dropped}")
    return "\n".join(lines)


async def run_site(args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    loop = asyncio.get_running_loop()
    async with Lab() as lab:
        site: Site = await lab.add_site(args.name, args.profile, seed=args.seed)
        print(f"site {site.name}: {site.address} in netns {site.netns}; server side {lab.server_address}; "
              f"profile {site.profile.name}: {site.profile.summary()}", file=sys.stderr, flush=True)
        outage = False

        def toggle() -> None:
            nonlocal outage
            outage = not outage
            print(f"blackhole {'on' if outage else 'off'}", file=sys.stderr, flush=True)
            asyncio.ensure_future(site.set_outage(outage))

        loop.add_signal_handler(signal.SIGUSR1, toggle)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        code = 0
        if cmd:
            env = {**os.environ, "LINKLAB_SITE": site.name, "LINKLAB_NETNS": site.netns,
                   "LINKLAB_SITE_ADDRESS": site.address, "LINKLAB_SERVER_ADDRESS": lab.server_address}
            proc = await asyncio.create_subprocess_exec(*site.exec_args(cmd), env=env)
            waiter = asyncio.ensure_future(proc.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(waiter, 10)
                except asyncio.TimeoutError:
                    proc.kill()
                    await waiter
            stopper.cancel()
            code = proc.returncode if proc.returncode is not None and proc.returncode >= 0 else 130
        else:
            print(f"holding the site (pid {os.getpid()}); run things with: ip netns exec {site.netns} CMD; "
                  "Ctrl-C ends it", file=sys.stderr, flush=True)
            await stop.wait()
        counters = await site.counters()
        print(json.dumps(counters, indent=2) if args.json else format_counters(counters), flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "relay":
            return relay.main(args)
        if args.command == "probe":
            return probe.main(args)
        if args.command == "profiles":
            for profile in PROFILES.values():
                print(f"{profile.name:9} {profile.description}\n          {profile.summary()}")
            return 0
        if args.command == "clean":
            removed = clean_all(everything=args.all)
            print("removed: " + (", ".join(removed) or "nothing"))
            return 0
        if args.command == "site":
            parse_profile(args.profile)
            return asyncio.run(run_site(args))
    except LinkLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2
