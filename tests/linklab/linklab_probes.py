"""Helpers for the link lab's self-tests: the UDP probes (``python -m linklab probe``) on either side of a link."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from linklab.tun import tun_available

PROBE = [sys.executable, "-m", "linklab", "probe"]


def lab_unavailable() -> str | None:
    """Why the lab cannot run here (not root, no TUN), or None."""
    if os.geteuid() != 0:
        return "the link lab needs root (network namespaces, TUN devices)"
    if not tun_available():
        return "the link lab needs /dev/net/tun"
    return None


class Probe:
    """A probe process (``python -m linklab probe ...``), optionally inside a site."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, args: Sequence[str], *, prefix: Sequence[str] = (), listening: bool = False) -> Probe:
        proc = await asyncio.create_subprocess_exec(*prefix, *PROBE, *args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        probe = cls(proc)
        if listening:
            line = await asyncio.wait_for(proc.stdout.readline(), 15)  # type: ignore[union-attr]
            if not line:
                raise AssertionError(f"probe {args} exited: {(await proc.stderr.read()).decode()}")  # type: ignore[union-attr]
        return probe

    async def result(self, timeout: float = 60) -> dict[str, Any]:
        out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        lines = [line for line in out.decode().splitlines() if line.strip()]
        assert self.proc.returncode == 0 and lines, f"probe failed ({self.proc.returncode}): {err.decode()}"
        return dict(json.loads(lines[-1]))

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def run_probe(args: Sequence[str], *, prefix: Sequence[str] = (), timeout: float = 60) -> dict[str, Any]:
    return await (await Probe.start(args, prefix=prefix)).result(timeout)
