"""The loop probe itself (tests/loop_probe.py): what it counts as a message's hold and what it leaves out."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

from loop_probe import HoldProbe


async def _hold(probe: HoldProbe, callback) -> object:  # type: ignore[no-untyped-def]
    probe.start()
    asyncio.get_running_loop().call_soon(callback)
    await asyncio.sleep(0.01)
    return probe.stop()


async def test_a_blocking_call_counts_as_elapsed_but_a_garbage_collection_does_not() -> None:
    probe = HoldProbe(threading.get_ident()).install()
    heap = [[object() for _ in range(50)] for _ in range(20_000)]  # a heap a full collection must walk
    try:
        blocked = await _hold(probe, lambda: time.sleep(0.03))
        collected = await _hold(probe, lambda: gc.collect())
    finally:
        probe.uninstall()
    del heap
    # time.sleep holds the loop without CPU: elapsed, not work.
    assert blocked.stall_ms >= 25 and blocked.work_ms < 10
    # The collection's time is the heap's, not the callback's: neither counted.
    assert collected.stall_ms < collected.wall_ms / 2
    assert collected.gc_ms > 0 and collected.work_ms < collected.cpu_ms
