"""The lab: emulated sites, each in its own network namespace behind an impairment relay.

    async with Lab() as lab:
        site = await lab.add_site("sr", profile="poor", seed=1)
        proc = await asyncio.create_subprocess_exec(*site.exec_args(["python", "-m", "bots", ...]))
        await site.set_outage(True, seconds=10)
        print(await site.counters())

Addressing (all in 198.18.0.0/15, RFC 2544): the server address 198.18.0.1/32 sits on the root
namespace's ``lo``; site N is 198.18.N.2 inside ``cablab-<pid>-<name>``, whose TUN device carries a
default route, so everything a site sends reaches the relay (which carries only lab traffic); the
root end of the link is 198.18.N.1 with 198.18.N.2 as its point-to-point peer. A blackhole route for
the whole range in the root namespace keeps unassigned lab addresses from ever being forwarded.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import netns as ns
from .errors import LabSetupError, LinkLabError, RelayError
from .packets import LAB_NETWORK
from .profiles import Profile, parse_profile
from .tun import tun_available

logger = logging.getLogger(__name__)

SERVER_ADDRESS = "198.18.0.1"
_SITE_NAME = re.compile(r"^[a-z0-9]{1,16}$")
MAX_SITES = 250
#: Namespaces of labs running in this process.
_LIVE: set[str] = set()


def _write_sysctl(path: str, value: str) -> None:
    try:
        Path(path).write_text(value)
    except OSError as exc:
        logger.debug("sysctl %s: %s", path, exc)


def check_privileges() -> None:
    """A LabSetupError saying why the lab cannot run here (not root, no TUN)."""
    if os.geteuid() != 0:
        raise LabSetupError("the link lab needs root (network namespaces and TUN devices)")
    if not tun_available():
        raise LabSetupError("the link lab needs /dev/net/tun")


class Site:
    """One emulated site: a namespace, its address, and the relay process that is its link."""

    def __init__(self, lab: Lab, name: str, index: int, profile: Profile, seed: int | None) -> None:
        self.lab = lab
        self.name = name
        self.index = index
        self.netns = f"{ns.PREFIX}{os.getpid()}-{name}"
        self.address = f"198.18.{index}.2"
        self.gateway = f"198.18.{index}.1"
        self.interface = f"cablab{index}s"
        self.root_interface = f"cablab{index}r"
        self.profile = profile
        self.seed = seed
        self.process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<Site {self.name} {self.address} in {self.netns}, profile {self.profile.name}>"

    def exec_args(self, cmd: Sequence[str]) -> list[str]:
        """argv running ``cmd`` inside the site (a bot, a node's server, headless chromium ...)."""
        return ns.exec_args(self.netns, cmd)

    async def _start(self) -> None:
        if self.netns in ns.list_netns() and self.netns not in _LIVE:
            await asyncio.to_thread(ns.delete_netns, self.netns)  # left over by a crashed lab in this process
        await ns.ip("netns", "add", self.netns)
        _LIVE.add(self.netns)
        self.lab._namespaces.add(self.netns)
        for key in ("all", "default"):
            await ns.ip("netns", "exec", self.netns, "sh", "-c",
                        f"echo 1 > /proc/sys/net/ipv6/conf/{key}/disable_ipv6", check=False)
        await ns.ip("-n", self.netns, "link", "set", "lo", "up")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "linklab", *(["-vv"] if logger.isEnabledFor(logging.DEBUG) else []), "relay", "--netns", self.netns, "--site-if", self.interface,
            "--root-if", self.root_interface, "--site-address", self.address,
            "--profile-json", json.dumps(self.profile.to_dict()),
            *(["--seed", str(self.seed)] if self.seed is not None else []),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20)
        self.lab._relay_pids.add(self.process.pid)
        ready = await self._read(timeout=15)
        if not ready.get("ready"):
            raise RelayError(f"relay for site {self.name} failed: {ready.get('error', ready)}")
        # Root end of the link.
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{self.root_interface}/disable_ipv6", "1")
        await ns.ip("addr", "add", f"{self.gateway}/32", "peer", f"{self.address}/32", "dev", self.root_interface)
        await ns.ip("link", "set", self.root_interface, "multicast", "off", "up")
        # Site end: its address, and everything through the relay.
        await ns.ip("netns", "exec", self.netns, "sh", "-c",
                    f"echo 1 > /proc/sys/net/ipv6/conf/{self.interface}/disable_ipv6", check=False)
        await ns.ip("-n", self.netns, "addr", "add", f"{self.address}/32", "dev", self.interface)
        await ns.ip("-n", self.netns, "link", "set", self.interface, "multicast", "off", "up")
        await ns.ip("-n", self.netns, "route", "add", "default", "dev", self.interface, "src", self.address)

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise RelayError(f"relay for site {self.name} did not answer within {timeout:g} s") from None
        if not line:
            raise RelayError(f"relay for site {self.name} exited (code {self.process.returncode})")
        return dict(json.loads(line))

    async def command(self, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send one control command to the relay and return its answer (RelayError if it refuses)."""
        if self.process is None or self.process.returncode is not None:
            raise RelayError(f"the relay for site {self.name} is not running")
        assert self.process.stdin is not None
        async with self._lock:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            await self.process.stdin.drain()
            answer = await self._read(timeout)
        if not answer.get("ok"):
            raise RelayError(f"relay for site {self.name}: {answer.get('error')}")
        return answer

    async def counters(self) -> dict[str, dict[str, int]]:
        """Per direction (``uplink`` site->server, ``downlink`` server->site): packets and bytes in,
        delivered, and dropped by loss / queue / outage / policy."""
        return dict((await self.command({"cmd": "counters"}))["counters"])

    async def set_outage(self, on: bool = True, seconds: float | None = None) -> None:
        """Blackhole the link now (both ways); with ``seconds`` it comes back by itself."""
        await self.command({"cmd": "outage", "on": on, "seconds": seconds})

    async def set_profile(self, profile: str | Profile) -> None:
        self.profile = parse_profile(profile)
        await self.command({"cmd": "profile", "profile": self.profile.to_dict()})

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(b'{"cmd": "stop"}\n')
                await self.process.stdin.drain()
                self.process.stdin.close()
                await asyncio.wait_for(self.process.wait(), 5)
            except (asyncio.TimeoutError, ConnectionError, BrokenPipeError):
                self.process.kill()
                await self.process.wait()
        if self.process is not None:
            self.lab._relay_pids.discard(self.process.pid)
        await asyncio.to_thread(ns.delete_netns, self.netns)
        self.lab._namespaces.discard(self.netns)
        _LIVE.discard(self.netns)


class Lab:
    """Owns the root namespace's lab resources and every site it adds; cleans up completely on close."""

    server_address = SERVER_ADDRESS

    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self._namespaces: set[str] = set()
        self._relay_pids: set[int] = set()
        self._root_ready = False
        self._closed = False

    async def __aenter__(self) -> Lab:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        check_privileges()
        await asyncio.to_thread(ns.clean_stale)
        atexit.register(self._close_sync)
        out = await ns.ip("-4", "-o", "addr", "show", "dev", "lo")
        if f" {SERVER_ADDRESS}/32 " not in out:
            await ns.ip("addr", "add", f"{SERVER_ADDRESS}/32", "dev", "lo")
        routes = await ns.ip("route", "show", "type", "blackhole")
        if str(LAB_NETWORK) not in routes:
            await ns.ip("route", "add", "blackhole", str(LAB_NETWORK), check=False)
        self._root_ready = True

    def _free_index(self) -> int:
        used = {s.index for s in self.sites.values()}
        for index in range(1, MAX_SITES + 1):
            if index in used or os.path.exists(f"/sys/class/net/cablab{index}r"):
                continue
            return index
        raise LabSetupError(f"no free site slot (at most {MAX_SITES} sites)")

    async def add_site(self, name: str, profile: str | Profile = "clean", *, seed: int | None = None) -> Site:
        """A new site ``name`` (1-16 of a-z, 0-9) behind a relay with ``profile`` (a name, a spec or a Profile)."""
        if self._closed or not self._root_ready:
            raise LinkLabError("the lab is not running (use `async with Lab() as lab`)")
        if not isinstance(name, str) or not _SITE_NAME.match(name):
            raise LinkLabError(f"site name {name!r} must be 1-16 characters of a-z and 0-9")
        if name in self.sites:
            raise LinkLabError(f"site {name!r} already exists")
        site = Site(self, name, self._free_index(), parse_profile(profile), seed)
        self.sites[name] = site
        try:
            await site._start()
        except BaseException:
            del self.sites[name]
            await site.close()
            raise
        logger.info("site %s at %s (%s): %s", name, site.address, site.netns, site.profile.summary())
        return site

    async def remove_site(self, name: str) -> None:
        site = self.sites.pop(name)
        await site.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for name in list(self.sites):
            try:
                await self.remove_site(name)
            except Exception:  # noqa: BLE001 - keep cleaning the rest
                logger.exception("closing site %s", name)
        await asyncio.to_thread(self._close_sync)
        atexit.unregister(self._close_sync)

    def _close_sync(self) -> None:
        """Everything this lab made goes, whatever state it is in (also run at interpreter exit)."""
        for pid in list(self._relay_pids):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        self._relay_pids.clear()
        for netns in list(self._namespaces):
            ns.delete_netns(netns)
            _LIVE.discard(netns)
        self._namespaces.clear()
        release_root_resources(exclude_pid=os.getpid())
        self._closed = True


def release_root_resources(exclude_pid: int | None = None) -> None:
    """Remove the server address and the blackhole route unless another live lab still uses them."""
    if ns.live_labs(exclude_pid=exclude_pid):
        return
    ns.ip_sync("addr", "del", f"{SERVER_ADDRESS}/32", "dev", "lo")
    ns.ip_sync("route", "del", "blackhole", str(LAB_NETWORK))


def clean_all(everything: bool = False) -> list[str]:
    """The stale-lab cleaner, for the CLI: namespaces of dead labs (or all), then root resources."""
    removed = ns.clean_stale(everything=everything)
    release_root_resources()
    return removed
