"""One send clock per event loop, shared by every publisher in it.

Waking up costs more than sending here (a bare 20 ms ``asyncio.sleep`` loop measured ~210 µs of
CPU per wake-up on the 2-core test VM, a publisher's packet ~25 µs), so all publishers of a
process are driven by a single 20 ms tick: the wake-up cost does not grow with the number of bots.
Video frames due between ticks go out on the next tick (at most one tick of pacing delay; the
stamp carries the actual send time, RTP timestamps stay on the media schedule).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

TICK_S = 0.02


class Paced(Protocol):
    def tick(self, now: float) -> None: ...


class Pacer:
    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pacer] = weakref.WeakKeyDictionary()

    def __init__(self) -> None:
        self._members: list[Paced] = []
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_running_loop(cls) -> Pacer:
        loop = asyncio.get_running_loop()
        pacer = cls._by_loop.get(loop)
        if pacer is None:
            pacer = cls._by_loop[loop] = cls()
        return pacer

    def add(self, member: Paced) -> None:
        if member not in self._members:
            self._members.append(member)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def remove(self, member: Paced) -> None:
        if member in self._members:
            self._members.remove(member)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        ticks = 0
        while self._members:
            now = loop.time()
            for member in list(self._members):
                member.tick(now)
            ticks += 1
            due = start + ticks * TICK_S
            if due < now:  # stalled: re-anchor instead of bursting
                start, ticks = now, 1
                due = now + TICK_S
            await asyncio.sleep(max(0.0, due - loop.time()))
