"""A minimal signaling client for tests: socket.io plus aiortc peer connections on loopback."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import socketio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from media.aiortc_seams import configure_ice


def loopback_pc() -> RTCPeerConnection:
    # max-bundle: aiortc's "balanced" policy mishandles an offer with many m-lines of one kind (slots).
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


class SigClient:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.arrived = asyncio.Event()
        self.recv_pc: RTCPeerConnection | None = None
        self.send_pc: RTCPeerConnection | None = None
        self.tracks: list[Any] = []
        #: The slots of the receiving connection (subscribe's answer), and who each carries now.
        self.slots: list[dict[str, Any]] = []
        self.slot_map: dict[str, dict[str, Any]] = {}
        for name in ("participant_joined", "participant_left", "track_added", "track_removed", "slot", "spotlight",
                     "offer", "dominant_speaker", "mute_changed", "transport_state", "hands", "quality",
                     "agenda", "room_state", "lobby", "presence", "admitted", "removed", "slot_state", "links", "video_wanted"):
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name: str):  # type: ignore[no-untyped-def]
        async def record(data: Any) -> None:
            self.events[name].append(data)
            if name == "slot":
                current = self.slot_map.get(data["slot_id"])
                if current is None or current["sequence"] < data["sequence"]:
                    self.slot_map[data["slot_id"]] = data
            self.arrived.set()
        return record

    def carried(self, kind: str | None = None) -> dict[str, str | None]:
        """slot id -> participant id it carries now (from the ``slot`` events)."""
        return {sid: e["participant_id"] for sid, e in self.slot_map.items()
                if kind is None or sid.startswith(kind) or sid == f"stage-{kind}"}

    async def connect(self, token: Any) -> None:
        await self.sio.connect(self.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)

    async def call(self, event: str, data: Any = None, timeout: float = 15) -> Any:
        return await self.sio.call(event, data if data is not None else {}, timeout=timeout)

    async def wait_for(self, name: str, predicate: Any = None, timeout: float = 15) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for item in self.events[name]:
                if predicate is None or predicate(item):
                    return item
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no {name} event matched; got {self.events[name]}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                pass

    async def publish(self, *tracks: Any) -> dict[str, Any]:
        self.send_pc = loopback_pc()
        for track in tracks:
            self.send_pc.addTransceiver(track, direction="sendonly")
        configure_ice(self.send_pc, ["127.0.0.1"], [])
        await self.send_pc.setLocalDescription(await self.send_pc.createOffer())
        reply = await self.call("publish", {"sdp": self.send_pc.localDescription.sdp})
        if reply.get("ok"):
            await self.send_pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        return reply  # type: ignore[no-any-return]

    async def subscribe(self, **slots: int) -> dict[str, Any]:
        self.recv_pc = loopback_pc()
        configure_ice(self.recv_pc, ["127.0.0.1"], [])

        @self.recv_pc.on("track")
        def on_track(track: Any) -> None:
            self.tracks.append(track)

        reply = await self.call("subscribe", slots)
        if reply.get("ok"):
            self.slots = reply["slots"]
            await self._answer(reply)
        return reply  # type: ignore[no-any-return]

    async def _answer(self, offer: dict[str, Any]) -> None:
        assert self.recv_pc is not None
        await self.recv_pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        configure_ice(self.recv_pc, ["127.0.0.1"], [])
        await self.recv_pc.setLocalDescription(await self.recv_pc.createAnswer())
        reply = await self.call("answer", {"sdp": self.recv_pc.localDescription.sdp, "revision": offer["revision"]})
        assert reply["ok"], reply

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        for pc in (self.send_pc, self.recv_pc):
            if pc is not None:
                await pc.close()
