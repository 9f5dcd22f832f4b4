"""How long one message holds an event loop: the longest synchronous stretch the loop runs.

An asyncio loop runs one callback at a time (``Handle._run``: a task step, a protocol's data_received, a
timer); while it runs, nothing else on that loop moves. The hold of a message is therefore the longest
single callback the loop ran between the message's arrival and the end of its effects.

:class:`HoldProbe` wraps ``asyncio.events.Handle._run`` (every callback of the pure-Python loop goes
through it: task steps are ``call_soon`` handles, socket reads are ``add_reader`` handles, timers are
``TimerHandle``) and, for the one loop it watches, records the longest callback in a window, both:

* ``cpu_ms``: CPU time of the loop's thread during the callback (``time.thread_time``). This is the work
  the callback itself did; it does not grow when the machine is busy, when the OS preempts the thread,
  or when the test's own client thread in the same process takes the GIL. On a noisy shared 2-core
  machine it is the robust figure, so the budget is asserted on it.
* ``wall_ms``: elapsed time (``time.perf_counter``), what a user on the loop actually waits, including
  blocking system calls (a synchronous file or database call holds the loop without CPU) but also any
  preemption. It is reported, and asserted with a wider margin (see tests/test_loop_budget.py) once the
  garbage collector's elapsed time is taken out (``stall_ms``): a collection walks the whole process's
  heap, which in the test process is every earlier test's leftovers (a 624 ms full collection late in a
  CI run), and runs in whichever callback happens to allocate.

Each case is measured several times and the minimum of the per-run maxima is kept: noise only ever adds
time, so the minimum is the closest to the message's own cost.

:class:`LagProbe` is the classic cross-check: a task that asks to wake every 5 ms and records the
largest lateness; it sees a hold from outside, without knowing which callback caused it.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import pstats
import threading
import time
from asyncio import events
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stretch:
    """The longest callback seen in a window."""

    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    gc_ms: float = 0.0  # of cpu_ms, in the garbage collector (a collection runs in whatever code allocates)
    work_ms: float = 0.0  # the longest callback's CPU time without garbage collection
    stall_ms: float = 0.0  # the longest callback's elapsed time without garbage collection
    what: str = ""  # repr of the callback that held the loop longest (by CPU)
    callbacks: int = 0
    profile: str = ""  # cProfile of the longest callback (HoldProbe(profile=True) only)

    def merge(self, wall_ms: float, cpu_ms: float, gc_ms: float, gc_wall_ms: float, handle: Any) -> None:
        self.callbacks += 1
        if wall_ms > self.wall_ms:
            self.wall_ms = wall_ms
        if wall_ms - gc_wall_ms > self.stall_ms:
            self.stall_ms = wall_ms - gc_wall_ms
        if cpu_ms - gc_ms > self.work_ms:
            self.work_ms = cpu_ms - gc_ms
        if cpu_ms > self.cpu_ms:
            self.cpu_ms = cpu_ms
            self.gc_ms = gc_ms
            try:
                self.what = repr(handle)[:300]
            except Exception:  # noqa: BLE001 - a repr must never break the loop
                self.what = type(handle).__name__


class _GcClock:
    """CPU and elapsed time spent in garbage collections, per thread (gc.callbacks run in the collecting
    thread)."""

    def __init__(self) -> None:
        self.local = threading.local()

    @property
    def total_ms(self) -> float:
        return getattr(self.local, "total", 0.0)

    @property
    def total_wall_ms(self) -> float:
        return getattr(self.local, "total_wall", 0.0)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.local.started = time.thread_time()
            self.local.started_wall = time.perf_counter()
        elif hasattr(self.local, "started"):
            self.local.total = self.total_ms + (time.thread_time() - self.local.started) * 1000
            self.local.total_wall = self.total_wall_ms + (time.perf_counter() - self.local.started_wall) * 1000


_gc = _GcClock()
_original_run = events.Handle._run
_probes: dict[int, HoldProbe] = {}  # thread id -> probe
_install_lock = threading.Lock()


def _timed_run(self: events.Handle) -> None:
    probe = _probes.get(threading.get_ident())
    stretch = probe.stretch if probe is not None else None
    if stretch is None:
        return _original_run(self)
    profiler = cProfile.Profile() if probe.profile else None  # type: ignore[union-attr]
    gc_before, gc_wall_before = _gc.total_ms, _gc.total_wall_ms
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        if profiler is not None:
            return profiler.runcall(_original_run, self)
        return _original_run(self)
    finally:
        cpu_ms = (time.thread_time() - cpu) * 1000
        gc_ms = _gc.total_ms - gc_before
        gc_wall_ms = _gc.total_wall_ms - gc_wall_before
        if profiler is not None and cpu_ms > stretch.cpu_ms:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
            stretch.profile = out.getvalue()
        stretch.merge((time.perf_counter() - wall) * 1000, cpu_ms, gc_ms, gc_wall_ms, self)


class HoldProbe:
    """Records the longest callback of the loop running in thread ``thread_id`` during each window."""

    def __init__(self, thread_id: int, *, profile: bool = False) -> None:
        self.thread_id = thread_id
        #: Profile every callback in a window (slow: for finding what a long hold does, not for timing).
        self.profile = profile
        self.stretch: Stretch | None = None

    def install(self) -> HoldProbe:
        with _install_lock:
            _probes[self.thread_id] = self
            if _gc not in gc.callbacks:
                gc.callbacks.append(_gc)
            events.Handle._run = _timed_run  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        with _install_lock:
            _probes.pop(self.thread_id, None)
            if not _probes:
                events.Handle._run = _original_run  # type: ignore[method-assign]
                gc.callbacks.remove(_gc)

    def start(self) -> None:
        self.stretch = Stretch()

    def stop(self) -> Stretch:
        stretch, self.stretch = self.stretch, None
        return stretch or Stretch()


@dataclass
class Measured:
    """The repeats of one case: the minimum of the per-run maxima, and every run for the report."""

    runs: list[Stretch] = field(default_factory=list)

    @property
    def cpu_ms(self) -> float:
        return min(r.cpu_ms for r in self.runs)

    @property
    def work_ms(self) -> float:
        return min(r.work_ms for r in self.runs)

    @property
    def gc_ms(self) -> float:
        return max(r.gc_ms for r in self.runs)

    @property
    def wall_ms(self) -> float:
        return min(r.wall_ms for r in self.runs)

    @property
    def stall_ms(self) -> float:
        return min(r.stall_ms for r in self.runs)

    @property
    def worst(self) -> Stretch:
        return min(self.runs, key=lambda r: r.cpu_ms)


class LagProbe:
    """A task on the watched loop that wakes every ``period`` seconds and records its largest lateness."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float = 0.005) -> None:
        self.loop = loop
        self.period = period
        self.max_lag_ms = 0.0
        self._task: asyncio.Future[Any] | None = None

    async def _tick(self) -> None:
        while True:
            expected = time.perf_counter() + self.period
            await asyncio.sleep(self.period)
            self.max_lag_ms = max(self.max_lag_ms, (time.perf_counter() - expected) * 1000)

    def start(self) -> None:
        self._task = asyncio.run_coroutine_threadsafe(self._tick(), self.loop)  # type: ignore[assignment]

    def reset(self) -> None:
        self.max_lag_ms = 0.0

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
