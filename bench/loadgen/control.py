"""Control channels of the load generator towards Cabinet: the bench SFU server's HTTP channel and the
real socket.io signaling. (Janus's VideoRoom is in bench/loadgen/janus.py.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from bench.loadgen.sites import Site

class BenchControl:
    """The bench SFU server's HTTP control channel (bench/sfu_server.py)."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.url + path, json=body, timeout=aiohttp.ClientTimeout(total=1200)) as response:
            data = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {data}")
            return data  # type: ignore[no-any-return]

    async def join(self, site: Site) -> None:
        pass

    async def publish(self, site: Site, sdp: str) -> str:
        return (await self._post("/publish", {"participant": site.name, "sdp": sdp}))["sdp"]  # type: ignore[no-any-return]

    async def subscribe(self, site: Site) -> dict[str, Any]:
        request: dict[str, Any] = {"participant": site.name, "last_n": site.last_n}
        if site.audios is not None:
            request["audios"] = site.audios
        return await self._post("/subscribe", request)

    async def answer(self, site: Site, sdp: str, revision: int) -> None:
        await self._post("/answer", {"participant": site.name, "sdp": sdp})

    async def close(self, site: Site) -> None:
        pass


class SioControl:
    """The real Cabinet signaling (socket.io), one connection per site."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def join(self, site: Site) -> None:
        import socketio

        site.sio = socketio.AsyncClient(reconnection=False)
        site.sio.on("offer", site.on_server_offer)  # not in the slots protocol: counted only
        site.sio.on("slot", site.on_slot)
        await site.sio.connect(self.url, auth={"token": site.token}, transports=["websocket"], wait_timeout=30)
        reply = await site.sio.call("join", {"last_n": site.last_n} if site.last_n is not None else {}, timeout=60)
        if not reply.get("ok"):
            raise RuntimeError(f"join refused: {reply}")
        site.participant_id = reply["participant_id"]

    async def _call(self, site: Site, event: str, data: dict[str, Any]) -> dict[str, Any]:
        reply = await site.sio.call(event, data, timeout=1200)
        if not reply.get("ok"):
            raise RuntimeError(f"{event} refused: {reply}")
        return reply  # type: ignore[no-any-return]

    async def publish(self, site: Site, sdp: str) -> str:
        return (await self._call(site, "publish", {"sdp": sdp}))["sdp"]  # type: ignore[no-any-return]

    async def subscribe(self, site: Site) -> dict[str, Any]:
        """The receiving connection's one offer and its slots (the server's default counts)."""
        return await self._call(site, "subscribe", {})

    async def answer(self, site: Site, sdp: str, revision: int) -> None:
        await self._call(site, "answer", {"sdp": sdp, "revision": revision})

    async def close(self, site: Site) -> None:
        if site.sio is not None and site.sio.connected:
            await site.sio.disconnect()
