"""The centre's end of a provincial node's control channel: ``GET /nodes/control`` (a WebSocket).

A node dials out (it may sit behind NAT) with ``Authorization: Bearer <node credential>``; a missing,
malformed, unknown or revoked credential is refused with 401 before the upgrade. Once connected the
centre sends ``hello`` (the node's id, name and office) and a full ``snapshot`` of what the node keeps
of its office (meetings/services/nodes.py, ``office_snapshot``), on every connection: a node that was
cut off replaces what it had rather than patching it. The node may ask for a ``resync`` and sends
``ping`` (answered ``pong``) to keep its NAT binding open; the WebSocket's own heartbeat ends a
silent connection. One channel per node: a new connection of the same node closes the old one. The
node is checked again every :data:`REVALIDATE_SECONDS`: a revoked node (or a deactivated office) is cut
off while connected, and refused at its next attempt; and its snapshot is computed again and sent when
it changed (a session opened, an account disabled at the centre is disabled on the node within that).

Frames are JSON objects with a ``type``; anything else gets an ``error`` frame and changes nothing,
and a node that sends :data:`MAX_BAD_FRAMES` of them is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from meetings.errors import MeetingsError, NotAuthenticated
from meetings.models.base import utcnow
from meetings.policy import Caller
from meetings.services import Services
from provincial_nodes.centre_pipes import CENTRE_PIPES
from provincial_nodes.control import CLOSE_REVOKED
from provincial_nodes.pipe_link import PipeLink
from web import keys
from web.forms import services

log = logging.getLogger("web.nodes")
routes = web.RouteTableDef()

PROTOCOL = 1
#: How often a connected node's credential and office are checked again.
REVALIDATE_SECONDS = 30.0
#: The WebSocket heartbeat: a ping this often, and the connection ends when its pong is missing.
HEARTBEAT_SECONDS = 15.0
MAX_FRAME_BYTES = 65_536
#: How often the centre measures the channel's round trip.
PING_SECONDS = 5.0
MAX_BAD_FRAMES = 20
#: Close codes a node acts on (4000-4999: the application's own).
CLOSE_REPLACED = 4409
LINKS: web.AppKey[NodeLinks] = web.AppKey("node_links")


@dataclass
class NodeLink:
    """A connected node, as the console shows it."""

    node_id: int
    name: str
    office_code: str
    address: str
    connected_at: dt.datetime
    ws: web.WebSocketResponse = field(repr=False)
    frames_in: int = 0
    bad_frames: int = 0
    snapshots_sent: int = 0
    #: What the last snapshot sent said (its generated_at aside), to send the next only when it differs.
    last_snapshot: str = ""
    #: The node's media pipe (None where this server runs no media, e.g. a test of the channel alone).
    pipe: PipeLink | None = None
    #: The control channel's round trip (the centre's ping to the node's pong), milliseconds.
    rtt_ms: float | None = None
    #: The node said goodbye (it is stopping) or was revoked: its end is not a cut.
    ended_on_purpose: bool = False


@dataclass
class NodeHistory:
    """A node's connections since this server started: how often it came back, its last outage."""

    connects: int = 0
    last_lost_at: dt.datetime | None = None
    last_outage_seconds: float | None = None

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


class NodeLinks:
    """The nodes connected to this server now, by node id."""

    def __init__(self) -> None:
        self.links: dict[int, NodeLink] = {}
        self.history: dict[int, NodeHistory] = {}

    def connected(self, node_id: int, at: dt.datetime) -> NodeHistory:
        history = self.history.setdefault(node_id, NodeHistory())
        history.connects += 1
        if history.last_lost_at is not None:
            history.last_outage_seconds = (at - history.last_lost_at).total_seconds()
        return history

    def lost(self, node_id: int, at: dt.datetime) -> None:
        self.history.setdefault(node_id, NodeHistory()).last_lost_at = at

    def get(self, node_id: int) -> NodeLink | None:
        return self.links.get(node_id)


def node_links(app: web.Application) -> NodeLinks:
    links = app.get(LINKS)
    if links is None:
        raise RuntimeError("the node links registry is not installed (web/app.py)")
    return links


def bearer_credential(request: web.Request) -> str | None:
    """The credential a node presents as ``Authorization: Bearer <credential>``, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@routes.get("/nodes/control")
async def control(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    address = request.app[keys.SECURITY].client_address(request)
    credential = bearer_credential(request)
    if credential is None:
        raise NotAuthenticated("a node presents its credential as Authorization: Bearer <credential>")
    node = await svc.nodes.authenticate(credential, address=address)
    snapshot = await svc.nodes.office_snapshot(node)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    links = node_links(request.app)
    old = links.links.get(node.id)
    if old is not None:
        await old.ws.close(code=CLOSE_REPLACED, message=b"replaced by a new connection of the node")
    link = links.links[node.id] = NodeLink(node.id, node.name, node.office.code, address, utcnow(), ws)
    history = links.connected(node.id, link.connected_at)
    await _end_gaps(svc, node.id, address)
    if history.last_outage_seconds is not None and history.connects > 1:
        await svc.nodes.record_link(node.id, "node.link_restored", address=address, details={
            "outage_seconds": round(history.last_outage_seconds, 1), "reconnects": history.reconnects})
    log.info("node connected", extra={"event": "node.connected", "node_id": node.id,
                                      "office": node.office.code, "address": address})
    watchdog = asyncio.create_task(_revalidate(request.app, link))
    pinger = asyncio.create_task(_ping(link))
    pipes = request.app.get(CENTRE_PIPES)
    try:
        pipe_hello = None
        if pipes is not None:
            link.pipe, pipe_hello = await pipes.open(node.id, node.office_id, node.office.code, address, ws.send_json)
        await ws.send_json({"type": "hello", "protocol": PROTOCOL, "pipe": pipe_hello,
                            "node": {"id": node.id, "name": node.name, "office": node.office.code}})
        await _send_snapshot(link, snapshot)
        async for message in ws:
            transport = link.pipe.transport if link.pipe is not None else None
            if message.type == WSMsgType.BINARY and transport is not None and transport.carrier == "stream":
                transport.stream_received(message.data)  # the pipe's packets, once the node said UDP is blocked
                continue
            if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break  # the connection failed (a cut the heartbeat found): nobody to answer
            if message.type != WSMsgType.TEXT:
                await _bad(link, "frames are JSON text")
                continue
            link.frames_in += 1
            await _handle(request, link, message.data)
    finally:
        for task in (watchdog, pinger):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if pipes is not None and link.pipe is not None:
            # The node stopping (it says "bye") or revoked: its people leave; any other end is a cut.
            cut = not link.ended_on_purpose
            carried = link.pipe.summary()
            meetings = sorted(link.pipe.shares)
            with_people = link.pipe.meetings_with_people()
            await pipes.close(node.id, link.pipe, cut=cut)
            if cut:
                await svc.nodes.record_link(node.id, "node.link_lost", address=address, details={
                    "meetings": meetings, "people": carried.people, "grace_seconds": pipes.grace_seconds})
                await _open_gaps(svc, node.id, with_people, pipes.cut_at.get(node.id) or utcnow(), address)
        if links.links.get(node.id) is link:
            del links.links[node.id]
            links.lost(node.id, utcnow())
        log.info("node disconnected", extra={"event": "node.disconnected", "node_id": node.id,
                                             "office": link.office_code, "close_code": ws.close_code})
    return ws


async def _open_gaps(svc: Services, node_id: int, meetings: list[int], at: dt.datetime, address: str) -> None:
    """The node's people are missing from the recordings of ``meetings`` from ``at`` (its copy fills them)."""
    try:
        await svc.recordings.open_gaps(Caller(principal=None, address=address, system=True), node_id, meetings, at)
    except MeetingsError as exc:  # a full disk, a busy database: logged; the link's record is the audit's
        log.warning("could not record a node's gap: %s", exc, extra={"event": "node.gap_record_failed",
                                                                      "node_id": node_id})


async def _end_gaps(svc: Services, node_id: int, address: str) -> None:
    """The node is back: its gaps (if any) end now."""
    try:
        await svc.recordings.end_gaps(Caller(principal=None, address=address, system=True), node_id)
    except MeetingsError as exc:
        log.warning("could not end a node's gaps: %s", exc, extra={"event": "node.gap_record_failed",
                                                                    "node_id": node_id})


async def _handle(request: web.Request, link: NodeLink, data: str) -> None:
    try:
        frame = json.loads(data)
    except ValueError:
        await _bad(link, "not JSON")
        return
    kind = frame.get("type") if isinstance(frame, dict) else None
    if kind == "ping":
        echo = frame.get("echo")  # the node's own round trip, if it measures one
        await link.ws.send_json({"type": "pong"} if echo is None else {"type": "pong", "echo": echo})
    elif kind == "pipe_stream" and link.pipe is not None and link.pipe.transport is not None:
        # The node hears nothing over UDP: the pipe's packets ride this channel (TLS in production).
        log.info("node pipe over the control channel", extra={"event": "node.pipe_stream", "node_id": link.node_id})
        link.pipe.ride_stream(link.ws.send_bytes)
    elif kind == "bye":  # the node is stopping: its people leave now, they are not waited for
        link.ended_on_purpose = True
    elif kind == "pong":  # the answer to the centre's own ping: the channel's round trip
        echo = frame.get("echo")
        if isinstance(echo, float) and 0 <= time.monotonic() - echo < 120:
            link.rtt_ms = round((time.monotonic() - echo) * 1000, 1)
            if link.pipe is not None:
                link.pipe.pipe.receiver.set_rtt(link.rtt_ms)
    elif isinstance(kind, str) and kind.startswith("pipe_") and link.pipe is not None:
        await link.pipe.handle_frame(frame)
    elif kind == "resync":
        node = await services(request).nodes.active_node(link.node_id)
        await _send_snapshot(link, await services(request).nodes.office_snapshot(node), force=True)
    else:
        await _bad(link, f"unknown frame type {kind!r}" if isinstance(kind, str) else "a frame is an object with a type")


async def _ping(link: NodeLink) -> None:
    """Ask the node for a pong now and then: the round trip the console shows."""
    while not link.ws.closed:
        await asyncio.sleep(PING_SECONDS)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await link.ws.send_json({"type": "ping", "echo": time.monotonic()})


async def _bad(link: NodeLink, message: str) -> None:
    link.bad_frames += 1
    log.info("bad node frame", extra={"event": "node.bad_frame", "node_id": link.node_id, "reason": message})
    if link.bad_frames >= MAX_BAD_FRAMES:
        await link.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many bad frames")
        return
    await link.ws.send_json({"type": "error", "code": "bad_frame", "message": message})


async def _send_snapshot(link: NodeLink, snapshot: dict[str, object], *, force: bool = False) -> None:
    content = json.dumps({k: v for k, v in snapshot.items() if k != "generated_at"}, sort_keys=True)
    if content == link.last_snapshot and not force:
        return
    link.last_snapshot = content
    link.snapshots_sent += 1
    await link.ws.send_json({"type": "snapshot", "snapshot": snapshot})


async def cut_off(link: NodeLink) -> None:
    """End a revoked node's channel; the node reads the close code and stops redialling at once."""
    log.info("node cut off: revoked or office inactive", extra={"event": "node.cut_off", "node_id": link.node_id})
    link.ended_on_purpose = True
    await link.ws.close(code=CLOSE_REVOKED, message=b"the node was revoked")


async def _revalidate(app: web.Application, link: NodeLink) -> None:
    svc = app[keys.SERVICES]
    while not link.ws.closed:
        await asyncio.sleep(REVALIDATE_SECONDS)
        try:
            if not await svc.nodes.still_valid(link.node_id):
                await cut_off(link)
                return
            node = await svc.nodes.active_node(link.node_id)
            await _send_snapshot(link, await svc.nodes.office_snapshot(node))
        except (MeetingsError, ConnectionError) as exc:  # a busy database, a closing socket: try again later
            log.warning("node revalidation failed: %s", exc, extra={"event": "node.revalidate_failed",
                                                                  "node_id": link.node_id})


def install(app: web.Application) -> None:
    """Give the application its registry of connected nodes (and close them when it stops)."""
    app[LINKS] = NodeLinks()

    async def close_links(_app: web.Application) -> None:
        for link in list(app[LINKS].links.values()):
            await link.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")

    app.on_shutdown.append(close_links)

