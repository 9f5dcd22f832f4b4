"""A small SFU-only process for the forwarding benchmark, with a minimal HTTP control channel.

    python bench/sfu_server.py --impl router|relay

* ``router``: Cabinet's SFU (media.Router): packet forwarding, no decoder or encoder.
* ``relay``: the naive baseline: aiortc's normal receiving track (decodes), aiortc's MediaRelay,
  and one normal RTCRtpSender (one encoder) per subscriber and track.

Prints ``READY <port>`` once listening on 127.0.0.1. Control (JSON over HTTP POST/GET):
``/publish {participant, sdp}`` -> ``{sdp, producers}`` (answer);
``/subscribe {participant, last_n?, videos?, audios?}`` -> ``{sdp, revision, slots}``: the receiving
connection's one offer. ``router``: the stage (audio + video), ``videos`` thumbnails (default 8) and
``audios`` extra voices (default 2), one m-line each, as the real server's subscribe; the router fills
them (a subscriber gets at most 1 + videos videos whatever the session size; ``last_n`` sets how many
of them carry video, the stage's included) and switches them without SDP, so ``slots`` lists each
slot's ``slot_id``, ``kind``, ``mid``, ``stream_id``, ``track_id`` and who it carries at offer time
(``participant_id``, may change). ``relay``: one m-line per track of every other participant
(``participant_id`` fixed). ``/answer {participant, sdp}``; ``GET /slots?participant=`` -> who each
slot carries now; ``GET /stats`` -> forwarded packet counters. SIGTERM closes every connection and exits.
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
from media.slot_set import DEFAULT_AUDIO_SLOTS, DEFAULT_VIDEO_SLOTS  # noqa: E402

LOOPBACK = ["127.0.0.1"]


class RouterImpl:
    def __init__(self) -> None:
        # No site budgets: this measures forwarding, and the load generator's subscribers (hundreds of
        # connections in one process) lose packets to their own CPU, which a budget would answer.
        self.router = Router(MediaConfig(ice_bind_addresses=LOOPBACK, budget_enabled=False), router_id="bench")
        self.recv: dict[str, Any] = {}

    async def publish(self, participant: str, sdp: str) -> dict[str, Any]:
        transport = self.router.create_transport(participant, "send")
        answer = await transport.accept_offer(sdp)
        producers = [transport.produce(t.mid) for t in transport.offered_tracks()]
        return {"sdp": answer, "producers": [{"producer_id": p.id, "kind": p.kind} for p in producers]}

    async def subscribe(self, participant: str, last_n: int | None, videos: int = DEFAULT_VIDEO_SLOTS,
                        audios: int = DEFAULT_AUDIO_SLOTS) -> dict[str, Any]:
        """The receiving connection with its slots, negotiated once (the router fills them: one refill
        for this subscriber, O(publishers), wherever the others are)."""
        transport = self.router.create_transport(participant, "recv")
        self.recv[participant] = transport
        if last_n is not None:
            self.router.set_last_n(participant, last_n)
        transport.create_slots(videos=videos, audios=audios)
        sdp = await transport.create_offer()
        return {"sdp": sdp, "revision": 1, "slots": self._slots(participant)}

    def _slots(self, participant: str) -> list[dict[str, Any]]:
        transport = self.recv.get(participant)
        slot_set = transport.slot_set if transport is not None else None
        if slot_set is None:
            return []
        return [{"slot_id": slot.id, "kind": slot.kind, "mid": transport.slot_mid(slot.id), "stream_id": slot.stream_id,
                 "track_id": slot.id, "participant_id": slot.target.participant_id if slot.target else None}
                for slot in slot_set.slots.values()]

    async def slots(self, participant: str) -> dict[str, Any]:
        return {"slots": self._slots(participant)}

    async def answer(self, participant: str, sdp: str) -> None:
        await self.recv[participant].accept_answer(sdp)

    async def stats(self) -> dict[str, Any]:
        slots = [slot for t in self.recv.values() if t.slot_set is not None for slot in t.slot_set.slots.values()]
        return {
            "forwarded": sum(s.stats.packets_sent for s in slots),
            "retransmitted": sum(s.stats.retransmitted for s in slots),
            "send_failures": sum(s.stats.send_failures for s in slots),
            "received": sum(p.stats.packets for p in self.router.producers.values()),
            "slots_forwarding": sum(1 for s in slots if s.forwarding),
            "switches": sum(s.stats.switches for s in slots),
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
        self.owners: dict[str, list[dict[str, Any]]] = {}

    async def publish(self, participant: str, sdp: str) -> dict[str, Any]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        tracks = self.tracks.setdefault(participant, [])
        pc.on("track", tracks.append)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        seams.configure_ice(pc, LOOPBACK, [])
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp, "producers": [{"kind": t.kind} for t in tracks]}

    async def subscribe(self, participant: str, last_n: int | None, videos: int = DEFAULT_VIDEO_SLOTS,
                        audios: int = DEFAULT_AUDIO_SLOTS) -> dict[str, Any]:
        """Every track of every other participant, one m-line each (no slots, no last-N)."""
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
            return {"sdp": None, "revision": 1, "slots": []}
        seams.configure_ice(pc, LOOPBACK, [])
        await pc.setLocalDescription(await pc.createOffer())
        self.owners[participant] = [{"slot_id": f"{kind}-{t.mid}", "kind": kind, "mid": t.mid, "stream_id": publisher,
                                     "track_id": f"{kind}-{t.mid}", "participant_id": publisher}
                                    for t, publisher, kind in owners]
        return {"sdp": pc.localDescription.sdp, "revision": 1, "slots": self.owners[participant]}

    async def slots(self, participant: str) -> dict[str, Any]:
        return {"slots": self.owners.get(participant, [])}

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
    # The old setup workaround (one selection per subscribe instead of one per per-producer stream):
    # slots need none (one refill per subscribe). Accepted so that older command lines still run.
    parser.add_argument("--defer-last-n", action="store_true", dest="obsolete_defer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    impl: Any = RouterImpl() if args.impl == "router" else RelayImpl()

    async def publish(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(await impl.publish(body["participant"], body["sdp"]))

    async def subscribe(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(await impl.subscribe(
            body["participant"], body.get("last_n"), int(body.get("videos", DEFAULT_VIDEO_SLOTS)),
            int(body.get("audios", DEFAULT_AUDIO_SLOTS))))

    async def slots(request: web.Request) -> web.Response:
        return web.json_response(await impl.slots(request.query.get("participant", "")))

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
    app.router.add_get("/slots", slots)
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
