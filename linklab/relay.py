"""The impairment relay: moves IP packets between a site's TUN device and the root namespace's.

Runs as its own process (``python -m linklab relay ...``), one per site. It creates both TUN devices,
moves the site's into the site's network namespace, prints one JSON line ``{"ready": true, ...}`` and
then serves a control channel of JSON lines on stdin/stdout:

    {"cmd": "counters"}                          -> {"ok": true, "counters": {"uplink": {...}, "downlink": {...}}, ...}
    {"cmd": "outage", "on": true, "seconds": 10} -> {"ok": true, "outage": true}
    {"cmd": "profile", "profile": {...}}         -> {"ok": true, "profile": "name"}
    {"cmd": "stop"}                              -> {"ok": true}, then exit

End of stdin (the lab process went away) stops the relay; so does SIGTERM, and the parent's death
(PR_SET_PDEATHSIG); SIGINT is ignored (a terminal's Ctrl-C is for the lab process). Closing the descriptors removes both devices.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import heapq
import json
import logging
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from .errors import LinkLabError, RelayError
from .impairment import Direction
from .packets import address_int, describe, downlink_allowed, is_udp, uplink_allowed
from .profiles import Profile
from .tun import open_tun

logger = logging.getLogger(__name__)

#: Packets read per wake-up of one device before yielding to the loop (fairness between directions).
READ_BATCH = 256
#: Packets due within this much of now are written in the same pass.
SLACK_S = 0.0002
MAX_PACKET = 65536


class Pipe:
    """One direction: reads ``src``, impairs, writes ``dst`` at each packet's delivery time."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop, src: int, dst: int, direction: Direction,
                 allowed: Callable[[bytes], bool]) -> None:
        self.name = name
        self.loop = loop
        self.src, self.dst = src, dst
        self.direction = direction
        self.allowed = allowed
        self._heap: list[tuple[float, int, bytes]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def start(self) -> None:
        self.loop.add_reader(self.src, self.on_readable)

    def stop(self) -> None:
        self.loop.remove_reader(self.src)
        if self._timer:
            self._timer.cancel()

    def on_readable(self) -> None:
        read, direction, allowed, heap = os.read, self.direction, self.allowed, self._heap
        now = self.loop.time()
        for _ in range(READ_BATCH):
            try:
                packet = read(self.src, MAX_PACKET)
            except BlockingIOError:
                break
            except OSError as exc:
                logger.warning("%s: read failed: %s", self.name, exc)
                break
            size = len(packet)
            if not allowed(packet):
                direction.refuse(size)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("%s: policy drop: %s", self.name, describe(packet))
                continue
            when = direction.offer(size, now)
            if when is None:
                continue
            self._seq += 1
            heapq.heappush(heap, (when, self._seq, packet))
        if heap:
            self._schedule()

    def _schedule(self) -> None:
        head = self._heap[0][0]
        if self._timer is not None:
            if self._timer_at <= head:
                return
            self._timer.cancel()
        self._timer_at = head
        self._timer = self.loop.call_at(head, self.flush)

    def flush(self) -> None:
        self._timer = None
        heap, direction, write, dst = self._heap, self.direction, os.write, self.dst
        due = self.loop.time() + SLACK_S
        while heap and heap[0][0] <= due:
            _, _, packet = heapq.heappop(heap)
            size = len(packet)
            if not direction.deliver(size):
                continue
            try:
                write(dst, packet)
            except OSError as exc:
                direction.write_failed(size)
                logger.debug("%s: write failed: %s", self.name, exc)
        if heap:
            self._schedule()

    def drain_outage(self) -> None:
        """A blackhole starts: packets already in flight are lost too."""
        for _, _, packet in self._heap:
            self.direction.deliver(len(packet))  # counted as outage drops (direction.outage is set)
        self._heap.clear()


class Relay:
    """Both directions of one site's link, its outage switch and its control commands."""

    def __init__(self, site_fd: int, root_fd: int, site_address: str, profile: Profile, seed: int | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.profile = profile
        rng = random.Random(seed)
        site = address_int(site_address)
        # Separate generators per direction, both derived from the seed: reproducible per direction.
        self.uplink = Pipe("uplink", self.loop, site_fd, root_fd, Direction(profile.uplink, random.Random(rng.random())),
                           lambda p: uplink_allowed(p, site) and not (self.profile.udp_blocked and is_udp(p)))
        self.downlink = Pipe("downlink", self.loop, root_fd, site_fd,
                             Direction(profile.downlink, random.Random(rng.random())),
                             lambda p: downlink_allowed(p, site) and not (self.profile.udp_blocked and is_udp(p)))
        self.outage = False
        self._outage_timer: asyncio.TimerHandle | None = None
        self._timed: list[asyncio.TimerHandle] = []
        self.stopped = asyncio.Event()

    def start(self) -> None:
        self.uplink.start()
        self.downlink.start()
        self._schedule_profile_outage()

    def stop(self) -> None:
        self.uplink.stop()
        self.downlink.stop()
        for handle in self._timed:
            handle.cancel()
        if self._outage_timer:
            self._outage_timer.cancel()
        self.stopped.set()

    def _schedule_profile_outage(self) -> None:
        for handle in self._timed:
            handle.cancel()
        self._timed = []
        p = self.profile
        if p.outage_at_s is not None and p.outage_s is not None:
            self._timed.append(self.loop.call_later(p.outage_at_s, self.set_outage, True, p.outage_s))

    def set_outage(self, on: bool, seconds: float | None = None) -> None:
        if self._outage_timer:
            self._outage_timer.cancel()
            self._outage_timer = None
        if on != self.outage:
            logger.info("outage %s", "starts" if on else "ends")
        self.outage = on
        for pipe in (self.uplink, self.downlink):
            pipe.direction.outage = on
            if on:
                pipe.drain_outage()
        if on and seconds is not None:
            self._outage_timer = self.loop.call_later(seconds, self.set_outage, False)

    def set_profile(self, profile: Profile) -> None:
        self.profile = profile
        self.uplink.direction.configure(profile.uplink)
        self.downlink.direction.configure(profile.downlink)
        self._schedule_profile_outage()

    def counters(self) -> dict[str, Any]:
        return {"uplink": self.uplink.direction.counters.to_dict(),
                "downlink": self.downlink.direction.counters.to_dict()}

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        cmd = message.get("cmd")
        if cmd == "counters":
            return {"ok": True, "counters": self.counters(), "outage": self.outage, "profile": self.profile.name}
        if cmd == "outage":
            seconds = message.get("seconds")
            if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
                raise RelayError(f"outage seconds must be a positive number, not {seconds!r}")
            self.set_outage(bool(message.get("on", True)), seconds)
            return {"ok": True, "outage": self.outage}
        if cmd == "profile":
            self.set_profile(Profile.from_dict(message["profile"]))
            return {"ok": True, "profile": self.profile.name}
        if cmd == "stop":
            self.loop.call_soon(self.stop)
            return {"ok": True}
        raise RelayError(f"unknown command {cmd!r}")


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _reply(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def _control(relay: Relay) -> None:
    reader = asyncio.StreamReader(limit=1 << 20)
    await relay.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while not relay.stopped.is_set():
        line = await reader.readline()
        if not line:
            logger.info("control channel closed; stopping")
            relay.stop()
            return
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise RelayError("a command is a JSON object")
            _reply(relay.handle(message))
        except (LinkLabError, ValueError, KeyError, TypeError) as exc:
            _reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


async def serve(args: argparse.Namespace) -> int:
    _die_with_parent()
    profile = Profile.from_dict(json.loads(args.profile_json))
    root_fd = open_tun(args.root_if)
    site_fd = open_tun(args.site_if)
    try:
        moved = subprocess.run(["ip", "link", "set", args.site_if, "netns", args.netns],
                               capture_output=True, text=True, check=False)
        if moved.returncode != 0:
            raise RelayError(f"cannot move {args.site_if} into {args.netns}: {moved.stderr.strip()}")
        relay = Relay(site_fd, root_fd, args.site_address, profile, args.seed)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, relay.stop)
        # A Ctrl-C at the operator's terminal is for the lab process, which still wants the counters.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        relay.start()
        _reply({"ready": True, "pid": os.getpid(), "root_if": args.root_if, "site_if": args.site_if})
        control = asyncio.create_task(_control(relay))
        await relay.stopped.wait()
        control.cancel()
        return 0
    finally:
        os.close(site_fd)
        os.close(root_fd)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--netns", required=True)
    parser.add_argument("--site-if", required=True)
    parser.add_argument("--root-if", required=True)
    parser.add_argument("--site-address", required=True)
    parser.add_argument("--profile-json", required=True)
    parser.add_argument("--seed", type=int, default=None)


def main(args: argparse.Namespace) -> int:
    if args.verbose:
        logging.getLogger("linklab").setLevel(logging.DEBUG if args.verbose > 1 else logging.INFO)
    try:
        return asyncio.run(serve(args))
    except LinkLabError as exc:
        _reply({"ready": False, "error": str(exc)})
        return 1
