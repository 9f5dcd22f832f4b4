"""A minimal stand-in for Cabinet's socket.io signaling (the protocol only), over a media.Router.

Enough to exercise bots.client end to end on 127.0.0.1: join, publish, subscribe with slots
(negotiated once: the one offer in the acknowledgement, answered with revision 1), ``slot`` events
after the answer, dominant speaker, mute, leave. :meth:`FakeSignaling.stray_offer` sends the
``offer`` event the slots protocol no longer has, to check that bots count it as an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiohttp import web

from bots.inprocess import slot_event
from media import Router, WebRtcTransport
from media.slot_report import SlotSwitch


@dataclass
class Peer:
    sid: str
    participant_id: str
    send: WebRtcTransport | None = None
    recv: WebRtcTransport | None = None
    answered: bool = False
    producers: list[str] = field(default_factory=list)
    subscribe_requests: list[dict[str, Any]] = field(default_factory=list)


def _ok(**values: Any) -> dict[str, Any]:
    return {"ok": True, **values}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


class FakeSignaling:
    def __init__(self, router: Router, tokens: dict[str, str]) -> None:
        self.router = router
        self.tokens = tokens  # token -> participant id
        self.peers: dict[str, Peer] = {}
        self.sio = socketio.AsyncServer(async_mode="aiohttp")
        self.app = web.Application()
        self.sio.attach(self.app)
        self.runner: web.AppRunner | None = None
        self.url = ""
        sio = self.sio
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        for name in ("join", "publish", "subscribe", "answer", "mute", "leave"):
            sio.on(name, getattr(self, f"on_{name}"))
        router.on("dominant_speaker_changed", self._speaker)

    async def start(self) -> str:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        for sid in list(self.peers):
            await self.sio.disconnect(sid)
        if self.runner is not None:
            await self.runner.cleanup()

    def _speaker(self, participant_id: str | None) -> None:
        asyncio.ensure_future(self.sio.emit("dominant_speaker", {"participant_id": participant_id}))

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if token not in self.tokens:
            raise socketio.exceptions.ConnectionRefusedError("join token is not valid", {"code": "token_invalid"})
        self.peers[sid] = Peer(sid, self.tokens[token])

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        peer = self.peers.pop(sid, None)
        if peer is not None:
            for transport in (peer.send, peer.recv):
                if transport is not None:
                    await transport.close()
            await self.sio.emit("participant_left", {"participant_id": peer.participant_id})

    async def on_join(self, sid: str, data: Any) -> dict[str, Any]:
        peer = self.peers[sid]
        tracks = [
            {"producer_id": p.id, "participant_id": p.participant_id, "kind": p.kind, "muted": p.paused}
            for p in self.router.producers.values()
        ]
        me = {"participant_id": peer.participant_id, "full_name": peer.participant_id, "roles": ["delegate"]}
        await self.sio.emit("participant_joined", me, skip_sid=sid)
        return _ok(participant_id=peer.participant_id, meeting={"id": 1, "title": "Test session"}, me=me,
                   permissions={"publish": True}, roster=[me], tracks=tracks,
                   dominant_speaker=self.router.dominant_speaker, ice_servers=[])

    async def on_publish(self, sid: str, data: Any) -> dict[str, Any]:
        peer = self.peers[sid]
        if peer.send is None:
            peer.send = self.router.create_transport(peer.participant_id, "send")
        answer = await peer.send.accept_offer(data["sdp"])
        produced = []
        for track in peer.send.offered_tracks():
            if any(p.mid == track.mid for p in peer.send.producers.values()):
                continue
            producer = peer.send.produce(track.mid)
            produced.append({"producer_id": producer.id, "kind": producer.kind, "mid": track.mid})
            await self.sio.emit("track_added", {"producer_id": producer.id, "participant_id": peer.participant_id,
                                                "kind": producer.kind}, skip_sid=sid)
        return _ok(sdp=answer, producers=produced)

    async def on_subscribe(self, sid: str, data: Any) -> dict[str, Any]:
        peer = self.peers[sid]
        peer.subscribe_requests.append(dict(data or {}))
        recv = peer.recv = self.router.create_transport(peer.participant_id, "recv")
        slot_set = recv.create_slots(videos=int((data or {}).get("videos", 8)), audios=int((data or {}).get("audios", 2)))
        slot_set.on("switch", lambda event: self._switch(peer, recv, event))
        sdp = await recv.create_offer()
        slots = [{"slot_id": slot.id, "kind": slot.kind, "mid": recv.slot_mid(slot.id), "stream_id": slot.stream_id,
                  "track_id": slot.id} for slot in slot_set.slots.values()]
        return _ok(sdp=sdp, revision=1, slots=slots)

    def _switch(self, peer: Peer, recv: WebRtcTransport, event: SlotSwitch) -> None:
        if peer.answered and peer.recv is recv:
            asyncio.ensure_future(self.sio.emit("slot", slot_event(recv, event), to=peer.sid))

    async def on_answer(self, sid: str, data: Any) -> dict[str, Any]:
        peer = self.peers[sid]
        if peer.recv is None or peer.answered or data.get("revision") != 1:
            return _error("wrong_state", "no offer is waiting for an answer")
        await peer.recv.accept_answer(data["sdp"])
        peer.answered = True
        assert peer.recv.slot_set is not None
        for event in sorted(peer.recv.slot_set.last_switches.values(), key=lambda e: e.sequence):
            self._switch(peer, peer.recv, event)
        return _ok()

    async def stray_offer(self, participant_id: str) -> None:
        """The ``offer`` event of the old protocol, which a slots server never sends."""
        sid = next(sid for sid, peer in self.peers.items() if peer.participant_id == participant_id)
        await self.sio.emit("offer", {"sdp": "v=0\r\n", "revision": 2}, to=sid)

    async def on_mute(self, sid: str, data: Any) -> dict[str, Any]:
        return _ok()

    async def on_leave(self, sid: str, data: Any) -> dict[str, Any]:
        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(self.sio.disconnect(sid)))
        return _ok()
