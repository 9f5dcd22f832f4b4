"""The node's end of its control channel: dialled out to the centre, kept up, redialled after a cut.

:class:`ControlClient` connects to ``<upstream>/nodes/control`` (web/views/nodes.py) with the node's
credential, hands every ``snapshot`` to its ``on_snapshot`` callback (provincial_nodes/replica.py),
pings every :data:`PING_SECONDS` to hold a NAT binding open, and after any loss of the connection
redials with exponential backoff and full jitter between :data:`MIN_BACKOFF_SECONDS` and
:data:`MAX_BACKOFF_SECONDS` (many nodes coming back after a national outage do not all knock at once),
at most :data:`FAST_CEILING_SECONDS` apart in the first minutes after an established link was lost,
each dial given up after :data:`CONNECT_SECONDS`.
A refused credential (401, or the centre closing with "revoked") is logged and retried at the
longest backoff: the secretariat may re-register the office's node, and the node must not hammer the
centre meanwhile. The credential never reaches a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from .errors import ControlRefused, NodeError

log = logging.getLogger("provincial_nodes.control")

MIN_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
#: After an established link is lost, redial at most this far apart for this long, then back off to MAX.
FAST_CEILING_SECONDS = 2.5
FAST_WINDOW_SECONDS = 300.0
#: A dial that has not reached the centre by then is given up (a blackholed WAN swallows the SYN).
CONNECT_SECONDS = 4.0
PING_SECONDS = 10.0
HEARTBEAT_SECONDS = 15.0
CLOSE_REVOKED = 4403

SnapshotHandler = Callable[[dict[str, Any]], Awaitable[None]]


class ChannelListener(Protocol):
    """Follows the channel: up (with the centre's ``hello`` and a way to send frames), its ``pipe_*``
    frames, down."""

    async def channel_up(self, hello: dict[str, Any], send: Callable[[dict[str, Any]], Awaitable[None]],
                         send_bytes: Callable[[bytes], Awaitable[None]]) -> None: ...

    def channel_bytes(self, data: bytes) -> None: ...

    async def channel_frame(self, frame: dict[str, Any]) -> None: ...

    async def channel_down(self) -> None: ...

    def channel_rtt(self, rtt_ms: float) -> None: ...


@dataclass
class LinkState:
    """What the node knows of its link, for its own console."""

    connected: bool = False
    connects: int = 0
    refusals: int = 0
    last_connected_at: dt.datetime | None = None
    last_lost_at: dt.datetime | None = None
    last_error: str = ""
    node_id: int | None = None
    office: str = ""
    #: The channel's round trip (the node's ping to the centre's pong), milliseconds.
    rtt_ms: float | None = None


def backoff_seconds(attempt: int, rng: random.Random, *, since_loss: float | None = None) -> float:
    """Full jitter: uniform in [MIN, min(MAX, MIN * 2**attempt)]; within :data:`FAST_WINDOW_SECONDS` of
    losing an established link, at most :data:`FAST_CEILING_SECONDS` (a WAN cut is over when it is
    over: the province's people should not wait half a minute more for the session)."""
    ceiling = min(MAX_BACKOFF_SECONDS, MIN_BACKOFF_SECONDS * 2 ** min(attempt, 10))
    if since_loss is not None and since_loss < FAST_WINDOW_SECONDS:
        ceiling = min(ceiling, FAST_CEILING_SECONDS)
    return rng.uniform(MIN_BACKOFF_SECONDS, ceiling)


class ControlClient:
    def __init__(self, upstream_url: str, credential: str, on_snapshot: SnapshotHandler, *,
                 ssl: Any = None, rng: random.Random | None = None,
                 listener: ChannelListener | None = None) -> None:
        if not upstream_url.startswith(("http://", "https://")):
            raise ValueError("the upstream URL is http(s)://host[:port]")
        self.url = upstream_url.rstrip("/") + "/nodes/control"
        self._credential = credential
        self._on_snapshot = on_snapshot
        self.listener = listener
        self._ssl = ssl
        self._rng = rng or random.Random()
        self.state = LinkState()
        self.snapshots = 0
        self._stopping = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    def __repr__(self) -> str:  # never the credential
        return f"ControlClient({self.url!r}, connected={self.state.connected})"

    async def run(self) -> None:
        """Stay connected until :meth:`stop`."""
        attempt = 0
        lost_at: float | None = None
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_SECONDS, sock_connect=CONNECT_SECONDS / 2)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self._stopping.is_set():
                try:
                    await self._session(http)
                except ControlRefused as exc:
                    self.state.refusals += 1
                    self.state.last_error = str(exc)
                    log.warning("the centre refused this node: %s", exc, extra={"event": "node.refused"})
                    attempt, lost_at = 10, None
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                    self.state.last_error = f"{type(exc).__name__}: {exc}"
                    log.info("control channel down: %s", self.state.last_error, extra={"event": "node.link_down"})
                if self.state.connected:
                    self.state.connected = False
                    self.state.last_lost_at = dt.datetime.now(dt.UTC)
                    attempt, lost_at = 0, time.monotonic()
                if self._stopping.is_set():
                    break
                delay = backoff_seconds(attempt, self._rng,
                                        since_loss=None if lost_at is None else time.monotonic() - lost_at)
                attempt += 1
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)

    async def stop(self) -> None:
        self._stopping.set()
        if self._ws is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ws.send_json({"type": "bye"})  # a stop, not a cut: the centre lets our people go
            await self._ws.close()

    async def _session(self, http: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {self._credential}"}
        try:
            ws = await http.ws_connect(self.url, headers=headers, heartbeat=HEARTBEAT_SECONDS,
                                       ssl=True if self._ssl is None else self._ssl,
                                       timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0))
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise ControlRefused(f"credential refused ({exc.status})") from None
            raise
        self._ws = ws
        pinger = asyncio.create_task(self._ping(ws))
        try:
            close_code = None
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.TEXT:
                    try:
                        await self._frame(message.json())
                    except (ValueError, NodeError) as exc:  # a bad frame or snapshot: the copy stays as it was
                        log.warning("unusable frame from the centre: %s", exc, extra={"event": "node.bad_frame"})
                elif message.type == aiohttp.WSMsgType.BINARY:  # the pipe's packets, where UDP is blocked
                    if self.listener is not None:
                        self.listener.channel_bytes(message.data)
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                      aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    # The code the centre sent, even when its side of the socket is gone before the reply.
                    close_code = message.data if message.type == aiohttp.WSMsgType.CLOSE else ws.close_code
                    break
            if close_code == CLOSE_REVOKED:
                raise ControlRefused("revoked while connected")
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            self._ws = None
            if self.listener is not None:
                await self.listener.channel_down()

    async def _frame(self, frame: Any) -> None:
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "hello":
            node = frame.get("node") or {}
            self.state.connected = True
            self.state.connects += 1
            self.state.last_connected_at = dt.datetime.now(dt.UTC)
            self.state.node_id, self.state.office = node.get("id"), str(node.get("office", ""))
            log.info("control channel up", extra={"event": "node.link_up", "node_id": self.state.node_id,
                                                  "office": self.state.office})
            if self.listener is not None and self._ws is not None:
                await self.listener.channel_up(frame, self._ws.send_json, self._ws.send_bytes)
        elif kind == "snapshot":
            await self._on_snapshot(frame.get("snapshot"))
            self.snapshots += 1
        elif kind == "pong":
            echo = frame.get("echo")
            if isinstance(echo, float) and 0 <= time.monotonic() - echo < 120:
                self.state.rtt_ms = round((time.monotonic() - echo) * 1000, 1)
                if self.listener is not None:
                    self.listener.channel_rtt(self.state.rtt_ms)
        elif kind == "ping" and self._ws is not None:  # the centre measures the round trip
            await self._ws.send_json({"type": "pong", "echo": frame.get("echo")})
        elif isinstance(kind, str) and kind.startswith("pipe_"):
            if self.listener is not None:
                await self.listener.channel_frame(frame)
        elif kind == "error":
            log.warning("the centre refused a frame: %s", frame.get("message"), extra={"event": "node.frame_refused"})

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await asyncio.sleep(1.0)  # a first round trip soon (the pipe's NACK spacing), then every PING_SECONDS
        while not ws.closed:
            await ws.send_json({"type": "ping", "echo": time.monotonic()})
            await asyncio.sleep(PING_SECONDS)
