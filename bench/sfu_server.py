"""A small SFU-only process for the forwarding benchmark, with a minimal HTTP control channel.

    python bench/sfu_server.py --impl router|relay

* ``router``: Cabinet's SFU (media.Router): packet forwarding, no decoder or encoder.
* ``relay``: the naive baseline: aiortc's normal receiving track (decodes), aiortc's MediaRelay,
  and one normal RTCRtpSender (one encoder) per subscriber and track.

Prints ``READY <port>`` once listening on 127.0.0.1. Control (JSON over HTTP POST/GET):
``/publish {participant, sdp}`` -> ``{sdp}`` (answer); ``/subscribe {participant, last_n}`` ->
``{sdp, consumers}`` (an offer for every current producer of the other participants);
``/answer {participant, sdp}``; ``GET /stats`` -> forwarded packet counters. SIGTERM closes every
connection and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaRelay  # noqa: E402

from media import MediaConfig, Router  # noqa: E402
from media import aiortc_seams as seams  # noqa: E402

LOOPBACK = ["127.0.0.1"]


class RouterImpl:
    def __init__(self, defer_last_n: bool = False) -> None:
        self.router = Router(MediaConfig(ice_bind_addresses=LOOPBACK), router_id="bench")
        self.recv: dict[str, Any] = {}
        self.defer_last_n = defer_last_n

    def _consume_all(self, transport: Any, participant: str) -> None:
        producers = [p for p in self.router.producers.values() if p.participant_id != participant]
        if not self.defer_last_n:
            for producer in producers:
                transport.consume(producer)
            return
        # Setup workaround (bench only): Router.add_consumer recomputes every subscriber's last-N
        # over every consumer, O(subscribers x consumers) per consume; subscribing 50 sites to 98
        # tracks each blocks the event loop for minutes and the first connections' ICE consent
        # expires. Recompute once per subscribe instead. The forwarding path is not touched.
        self.router._update_last_n = lambda: None  # type: ignore[method-assign]
        try:
            for producer in producers:
                transport.consume(producer)
        finally:
            del self.router._update_last_n
            self.router._update_last_n()

    async def publish(self, participant: str, sdp: str) -> dict[str, Any]:
        transport = self.router.create_transport(participant, "send")
        answer = await transport.accept_offer(sdp)
        producers = [transport.produce(t.mid) for t in transport.offered_tracks()]
        return {"sdp": answer, "producers": [{"producer_id": p.id, "kind": p.kind} for p in producers]}

    async def subscribe(self, participant: str, last_n: int | None) -> dict[str, Any]:
        transport = self.router.create_transport(participant, "recv")
        self.recv[participant] = transport
        if last_n is not None:
            self.router.set_last_n(participant, last_n)
        self._consume_all(transport, participant)
        if not transport.consumers:
            return {"sdp": None, "consumers": []}
        sdp = await transport.create_offer()
        consumers = [{"mid": transport.consumer_mid(c.id), "kind": c.kind, "participant_id": c.producer.participant_id}
                     for c in transport.consumers.values()]
        return {"sdp": sdp, "consumers": consumers}

    async def answer(self, participant: str, sdp: str) -> None:
        await self.recv[participant].accept_answer(sdp)

    async def stats(self) -> dict[str, Any]:
        consumers = list(self.router.consumers.values())
        return {
            "forwarded": sum(c.stats.packets_sent for c in consumers),
            "retransmitted": sum(c.stats.retransmitted for c in consumers),
            "send_failures": sum(c.stats.send_failures for c in consumers),
            "received": sum(p.stats.packets for p in self.router.producers.values()),
            "consumers_forwarding": sum(1 for c in consumers if c.forwarding),
        }

    async def close(self) -> None:
        await self.router.close()


class RelayImpl:
    """What aiortc offers out of the box: decode once per track, encode per subscriber."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.tracks: dict[str, list[Any]] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.recv: dict[str, RTCPeerConnection] = {}

    async def publish(self, participant: str, sdp: str) -> dict[str, Any]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        tracks = self.tracks.setdefault(participant, [])
        pc.on("track", tracks.append)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        seams.configure_ice(pc, LOOPBACK, [])
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp, "producers": [{"kind": t.kind} for t in tracks]}

    async def subscribe(self, participant: str, last_n: int | None) -> dict[str, Any]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        self.recv[participant] = pc
        owners = []
        for publisher, tracks in self.tracks.items():
            if publisher == participant:
                continue
            for track in tracks:
                transceiver = pc.addTransceiver(self.relay.subscribe(track), direction="sendonly")
                owners.append((transceiver, publisher, track.kind))
        if not owners:
            return {"sdp": None, "consumers": []}
        seams.configure_ice(pc, LOOPBACK, [])
        await pc.setLocalDescription(await pc.createOffer())
        consumers = [{"mid": t.mid, "kind": kind, "participant_id": publisher} for t, publisher, kind in owners]
        return {"sdp": pc.localDescription.sdp, "consumers": consumers}

    async def answer(self, participant: str, sdp: str) -> None:
        await self.recv[participant].setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def stats(self) -> dict[str, Any]:
        forwarded = 0
        for pc in self.recv.values():
            for sender in pc.getSenders():
                for stat in (await sender.getStats()).values():
                    if stat.type == "outbound-rtp":
                        forwarded += stat.packetsSent
        return {"forwarded": forwarded}

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["router", "relay"], default="router")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--defer-last-n", action="store_true",
                        help="setup workaround: recompute last-N once per subscribe, not per consumer")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    impl: Any = RouterImpl(args.defer_last_n) if args.impl == "router" else RelayImpl()

    async def publish(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(await impl.publish(body["participant"], body["sdp"]))

    async def subscribe(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(await impl.subscribe(body["participant"], body.get("last_n")))

    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        await impl.answer(body["participant"], body["sdp"])
        return web.json_response({})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(await impl.stats())

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/publish", publish)
    app.router.add_post("/subscribe", subscribe)
    app.router.add_post("/answer", answer)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {runner.addresses[0][1]}", flush=True)
    await stop.wait()
    try:
        await asyncio.wait_for(impl.close(), 10)
    except Exception:  # noqa: BLE001 - exiting anyway
        pass
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
