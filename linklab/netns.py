"""Network namespaces and the root namespace's lab resources, through iproute2 (`ip`)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence

from .errors import LabSetupError

logger = logging.getLogger(__name__)

#: Every lab namespace is named ``cablab-<owner pid>-<site name>``.
PREFIX = "cablab-"
_NAME = re.compile(r"^cablab-(\d+)-([a-z0-9]+)$")


async def ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS``; a LabSetupError with ip's message when it fails and ``check``."""
    proc = await asyncio.create_subprocess_exec("ip", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise LabSetupError(f"ip {' '.join(args)}: {err.decode(errors='replace').strip()}")
    return out.decode()


def ip_sync(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise LabSetupError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def exec_args(netns: str, cmd: Sequence[str]) -> list[str]:
    """The argv running ``cmd`` inside ``netns``."""
    return ["ip", "netns", "exec", netns, *cmd]


def list_netns() -> list[str]:
    done = ip_sync("netns", "list")
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def owner_pid(netns: str) -> int | None:
    match = _NAME.match(netns)
    return int(match.group(1)) if match else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_netns_processes(netns: str, wait_s: float = 2.0) -> None:
    """SIGTERM, then SIGKILL, every process still inside ``netns`` (a bot, a server, a browser ...)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in ip_sync("netns", "pids", netns).stdout.split()]
        pids = [p for p in pids if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and ip_sync("netns", "pids", netns).stdout.split():
            time.sleep(0.05)


def delete_netns(netns: str) -> None:
    """Delete ``netns`` after ending whatever still runs in it (synchronous: usable at exit)."""
    if netns not in list_netns():
        return
    kill_netns_processes(netns)
    done = ip_sync("netns", "delete", netns)
    if done.returncode != 0 and netns in list_netns():
        logger.warning("cannot delete netns %s: %s", netns, done.stderr.strip())


def clean_stale(*, everything: bool = False) -> list[str]:
    """Delete lab namespaces whose owning process is gone (all of them with ``everything``)."""
    removed = []
    for netns in list_netns():
        pid = owner_pid(netns)
        if pid is None:
            continue
        if everything or not pid_alive(pid):
            delete_netns(netns)
            removed.append(netns)
    if removed:
        logger.info("removed stale lab namespaces: %s", ", ".join(removed))
    return removed


def live_labs(exclude_pid: int | None = None) -> set[int]:
    """Owner pids of lab namespaces whose owner still runs."""
    pids = {owner_pid(n) for n in list_netns()}
    return {p for p in pids if p is not None and p != exclude_pid and pid_alive(p)}
