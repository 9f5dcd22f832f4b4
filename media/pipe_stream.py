"""A pipe's packets over a stream when UDP does not get through (a firewall that lets only TCP out):
each protected packet is one message of the stream (a WebSocket binary frame on the node's control
channel, over TLS in production), written in order by one task.

Media over TCP must not build a backlog: when more than :data:`MAX_QUEUED` packets wait (the stream
is slower than the media), the oldest are dropped and counted; the receiver's NACKs and keyframe
requests recover what matters, as after any loss.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

MAX_QUEUED = 512


class StreamWriter:
    """Sends packets through ``send`` (an async message writer) in order, dropping the oldest beyond
    :data:`MAX_QUEUED`."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], *, max_queued: int = MAX_QUEUED) -> None:
        self._send = send
        self._queue: collections.deque[bytes] = collections.deque()
        self._max = max_queued
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())
        self.sent = 0
        self.dropped = 0
        self.failed = 0

    def __call__(self, packet: bytes) -> None:
        if len(self._queue) >= self._max:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(packet)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                packet = self._queue.popleft()
                try:
                    await self._send(packet)
                except (ConnectionError, RuntimeError) as exc:  # the stream is closing: its owner closes us
                    self.failed += 1
                    log.debug("pipe stream write failed: %s", exc)
                    self._queue.clear()
                    break
                self.sent += 1

    def close(self) -> None:
        self._task.cancel()
        self._queue.clear()

    async def aclose(self) -> None:
        self.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
