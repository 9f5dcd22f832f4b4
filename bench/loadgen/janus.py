"""Janus's VideoRoom over Janus's HTTP API, as a control channel of the load generator.

Per site one Janus session (a long poll delivers its events; a keepalive every 20 s), one handle to
publish and one to subscribe. Publishing: ``join`` as publisher (the site's name as display), then
``publish`` with the site's offer (non-trickle: aiortc's offer carries its candidates) and Janus's
answer arrives as an event. Subscribing (Janus 1.x multistream): ``join`` as subscriber to every
publisher's feed in one peer connection; Janus sends the offer, the site answers with ``start``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from bench.loadgen.sites import Site

VIDEOROOM = "janus.plugin.videoroom"
KEEPALIVE_S = 20.0
TIMEOUT = aiohttp.ClientTimeout(total=120)


class JanusError(RuntimeError):
    pass


class JanusSession:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.id = 0
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.url + path, json=body, timeout=TIMEOUT) as response:
            data: dict[str, Any] = await response.json(content_type=None)
        if data.get("janus") == "error":
            raise JanusError(f"{body.get('janus')}: {data.get('error')}")
        return data

    async def create(self) -> None:
        data = await self._post("", {"janus": "create", "transaction": secrets.token_hex(6)})
        self.id = data["data"]["id"]
        self.tasks = [asyncio.ensure_future(self._poll()), asyncio.ensure_future(self._keepalive())]

    async def attach(self) -> int:
        data = await self._post(f"/{self.id}", {"janus": "attach", "plugin": VIDEOROOM,
                                                "transaction": secrets.token_hex(6)})
        return int(data["data"]["id"])

    async def _poll(self) -> None:
        while True:
            try:
                async with self.http.get(f"{self.url}/{self.id}?maxev=10",
                                         timeout=aiohttp.ClientTimeout(total=70)) as response:
                    data = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                await asyncio.sleep(0.5)
                continue
            for event in data if isinstance(data, list) else [data]:
                future = self.waiting.get(event.get("transaction", ""))
                if future is not None and not future.done() and event.get("janus") in ("event", "error"):
                    future.set_result(event)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, JanusError):
                await self._post(f"/{self.id}", {"janus": "keepalive", "transaction": secrets.token_hex(6)})

    async def request(self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None,
                      timeout: float = 60) -> dict[str, Any]:
        """A plugin request; its answer (synchronous, or the event of an asynchronous one):
        ``{"data": plugin data, "jsep": ...}``."""
        transaction = secrets.token_hex(6)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[transaction] = future
        message: dict[str, Any] = {"janus": "message", "transaction": transaction, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            reply = await self._post(f"/{self.id}/{handle}", message)
            if reply.get("janus") != "ack":
                event = reply
            else:
                event = await asyncio.wait_for(future, timeout)
        finally:
            self.waiting.pop(transaction, None)
        if event.get("janus") == "error":
            raise JanusError(f"{body.get('request')}: {event.get('error')}")
        data = event.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(f"{body.get('request')}: {data['error']}")
        return {"data": data, "jsep": event.get("jsep")}

    async def destroy(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.id:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, JanusError):
                await self._post(f"/{self.id}", {"janus": "destroy", "transaction": secrets.token_hex(6)})


class JanusControl:
    """The load generator's sites in one VideoRoom ``room`` of Janus at ``url``."""

    def __init__(self, url: str, room: int, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.room = room
        self.http = http
        self.sessions: dict[str, JanusSession] = {}
        self.handles: dict[tuple[str, str], int] = {}

    async def join(self, site: Site) -> None:
        session = self.sessions[site.name] = JanusSession(self.http, self.url)
        await session.create()

    async def publish(self, site: Site, sdp: str) -> str:
        session = self.sessions[site.name]
        handle = self.handles[(site.name, "pub")] = await session.attach()
        await session.request(handle, {"request": "join", "ptype": "publisher", "room": self.room,
                                       "display": site.name})
        reply = await session.request(handle, {"request": "publish", "audiocodec": "opus", "videocodec": "vp8"},
                                      jsep={"type": "offer", "sdp": sdp, "trickle": False})
        if not reply["jsep"] or reply["jsep"].get("type") != "answer":
            raise JanusError(f"publish: no answer ({reply})")
        return str(reply["jsep"]["sdp"])

    async def subscribe(self, site: Site) -> dict[str, Any]:
        session = self.sessions[site.name]
        handle = self.handles[(site.name, "sub")] = await session.attach()
        listing = await session.request(handle, {"request": "listparticipants", "room": self.room})
        feeds = [p["id"] for p in listing["data"].get("participants", [])
                 if p.get("publisher") and p.get("display") != site.name]
        if not feeds:
            return {}
        reply = await session.request(handle, {"request": "join", "ptype": "subscriber", "room": self.room,
                                               "streams": [{"feed": feed} for feed in feeds]})
        if not reply["jsep"] or reply["jsep"].get("type") != "offer":
            raise JanusError(f"subscribe: no offer ({reply})")
        # In the shape of Cabinet's slots (bench/loadgen/sites.py learns SSRCs from them); each of
        # Janus's m-lines carries one publisher's feed for good (stream_id == participant_id).
        slots = []
        for s in reply["data"].get("streams", []):
            if s.get("type") in ("audio", "video"):
                owner = str(s.get("feed_display", s.get("feed_id")))
                slots.append({"slot_id": f"{s['type']}-{s['mid']}", "mid": s["mid"], "kind": s["type"],
                              "stream_id": owner, "participant_id": owner})
        return {"sdp": reply["jsep"]["sdp"], "revision": 0, "slots": slots}

    async def answer(self, site: Site, sdp: str, revision: int) -> None:
        session = self.sessions[site.name]
        await session.request(self.handles[(site.name, "sub")], {"request": "start"},
                              jsep={"type": "answer", "sdp": sdp, "trickle": False})

    async def close(self, site: Site) -> None:
        session = self.sessions.pop(site.name, None)
        if session is not None:
            await session.destroy()
