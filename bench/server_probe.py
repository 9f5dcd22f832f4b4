"""Runs ``cabinet serve`` with an event-loop probe (bench/forwarding.py --scenario cabinet --loop-probe FILE).

    python bench/server_probe.py OUT.jsonl serve --config ... --port ...

Every callback of the asyncio loop is timed (``Handle._run``); each one that holds the loop for
``SLOW_MS`` or more is appended to OUT.jsonl as {"t": monotonic start, "ms": duration, "what": name}
(a task's step is named by its coroutine, anything else by its callback's qualified name); each
garbage collection of ``GC_MS`` or more likewise ({"gc": generation}). A probe task sleeping 1 ms
records the loop lag it sees (its wake-up minus its deadline) when ``SLOW_MS`` or more. The cost is
two perf_counter() calls per callback. The monotonic clock is the one the load generators use, so
the lines can be cut to the measured window.

Memory: with ``BENCH_PROBE_TRACEMALLOC=FRAMES`` the probe starts tracemalloc (FRAMES deep) and, on each
SIGUSR1, dumps a snapshot to OUT.jsonl.N.snapshot (N = 1, 2, ...): bench/churn.py --tracemalloc
compares the one taken before the churn with the one after it. On SIGUSR2 the probe calls glibc's
``malloc_trim(0)`` (what part of the server's resident memory is free heap glibc kept: churn.py
--malloc-trim).

Experiment: with ``BENCH_PROBE_GC_FREEZE=SECONDS`` in the environment the probe also calls
``gc.freeze()`` every SECONDS (objects that survived so far leave the collector's generations, so a
full collection only walks what was allocated since): does that remove the full-collection pauses?
"""

from __future__ import annotations

import asyncio
import asyncio.events
import gc
import json
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SLOW_MS = 5.0
GC_MS = 2.0


def describe(handle: Any) -> str:
    callback = handle._callback
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f"@{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}" if frame is not None else ""
        return f"task {getattr(coro, '__qualname__', repr(coro))}{where}"
    name = getattr(callback, "__qualname__", None) or type(callback).__qualname__
    module = getattr(callback, "__module__", "") or ""
    return f"{module}.{name}"


def install(path: str) -> None:
    out = open(path, "a", buffering=1)  # noqa: SIM115 - for the life of the process
    perf = time.perf_counter
    mono = time.monotonic
    slow = SLOW_MS / 1000
    original = asyncio.events.Handle._run

    def _run(self: Any) -> None:
        t0 = perf()
        original(self)
        elapsed = perf() - t0
        if elapsed >= slow:
            out.write(json.dumps({"t": mono() - elapsed, "ms": round(elapsed * 1000, 2), "what": describe(self)}) + "\n")

    asyncio.events.Handle._run = _run  # type: ignore[method-assign]

    gc_start = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_start[0] = perf()
        else:
            elapsed = perf() - gc_start[0]
            if elapsed * 1000 >= GC_MS:
                out.write(json.dumps({"t": mono() - elapsed, "ms": round(elapsed * 1000, 2),
                                      "gc": info.get("generation"), "collected": info.get("collected")}) + "\n")

    gc.callbacks.append(on_gc)

    async def lag_probe() -> None:
        while True:
            deadline = mono() + 0.001
            await asyncio.sleep(0.001)
            lag = mono() - deadline
            if lag >= slow:
                out.write(json.dumps({"t": deadline, "ms": round(lag * 1000, 2), "lag": True}) + "\n")

    original_run = asyncio.run

    def run(main: Any, **kwargs: Any) -> Any:
        async def freezer(every: float) -> None:
            while True:
                await asyncio.sleep(every)
                gc.freeze()

        snapshots = [0]

        def dump_snapshot() -> None:
            gc.collect()
            snapshots[0] += 1
            tracemalloc.take_snapshot().dump(f"{path}.{snapshots[0]}.snapshot")

        def trim() -> None:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)

        async def with_probe() -> Any:
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, trim)
            frames = int(os.environ.get("BENCH_PROBE_TRACEMALLOC", "0") or 0)
            if frames > 0:
                tracemalloc.start(frames)
                asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_snapshot)
            task = asyncio.ensure_future(lag_probe())
            freeze = float(os.environ.get("BENCH_PROBE_GC_FREEZE", "0") or 0)
            frozen = asyncio.ensure_future(freezer(freeze)) if freeze > 0 else None
            try:
                return await main
            finally:
                task.cancel()
                if frozen is not None:
                    frozen.cancel()

        return original_run(with_probe(), **kwargs)

    asyncio.run = run  # type: ignore[assignment]


if __name__ == "__main__":
    install(sys.argv[1])
    from cabinet.cli import main

    sys.exit(main(sys.argv[2:]))
