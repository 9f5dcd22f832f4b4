"""A minimal stand-in for Cabinet's socket.io signaling (the protocol only), over a media.Router.

Enough to exercise bots.client end to end on 127.0.0.1: join, publish, subscribe, answer,
server-pushed offers when producers come and go, dominant speaker, mute, leave.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiohttp import web

from media import Router, WebRtcTransport


@dataclass
class Peer:
    sid: str
    participant_id: str
    send: WebRtcTransport | None = None
    recv: WebRtcTransport | None = None
    revision: int = 0
    producers: list[str] = field(default_factory=list)


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
            for other in self.peers.values():
                if other.recv is not None and other is not peer:
                    other.recv.consume(producer)
        if produced:
            for other in list(self.peers.values()):
                if other.recv is not None and other is not peer:
                    await self._push_offer(other)
        return _ok(sdp=answer, producers=produced)

    async def _offer(self, peer: Peer) -> dict[str, Any]:
        assert peer.recv is not None
        sdp = await peer.recv.create_offer()
        peer.revision += 1
        return {"sdp": sdp, "revision": peer.revision, "consumers": self._consumers_with_mids(peer)}

    def _consumers_with_mids(self, peer: Peer) -> list[dict[str, Any]]:
        # Consumer.mid is set at answer time; derive it from the offer order instead (test-only).
        assert peer.recv is not None
        transceivers = peer.recv.peer_connection.getTransceivers()
        consumers = list(peer.recv.consumers.values())
        live = [t for t in transceivers if t.direction != "inactive"]
        return [{"consumer_id": c.id, "producer_id": c.producer_id, "participant_id": c.producer.participant_id,
                 "kind": c.kind, "mid": t.mid} for c, t in zip(consumers, live)]

    async def _push_offer(self, peer: Peer) -> None:
        await self.sio.emit("offer", await self._offer(peer), to=peer.sid)

    async def on_subscribe(self, sid: str, data: Any) -> dict[str, Any]:
        peer = self.peers[sid]
        peer.recv = self.router.create_transport(peer.participant_id, "recv")
        for producer in list(self.router.producers.values()):
            if producer.participant_id != peer.participant_id:
                peer.recv.consume(producer)
        return _ok(**await self._offer(peer))

    async def on_answer(self, sid: str, data: Any) -> dict[str, Any]:
        peer = self.peers[sid]
        if peer.recv is None or data.get("revision") != peer.revision:
            return _error("stale_answer", "answer for an old offer")
        await peer.recv.accept_answer(data["sdp"])
        return _ok()

    async def on_mute(self, sid: str, data: Any) -> dict[str, Any]:
        return _ok()

    async def on_leave(self, sid: str, data: Any) -> dict[str, Any]:
        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(self.sio.disconnect(sid)))
        return _ok()
