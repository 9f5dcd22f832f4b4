"""The load generator process: reads its configuration, runs its sites, obeys the commands of
bench/forwarding.py (see bench/loadgen/__init__.py) and prints JSON events."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import aiohttp  # noqa: E402

from bench.loadgen.control import BenchControl, SioControl  # noqa: E402
from bench.loadgen.janus import JanusControl  # noqa: E402
from bench.loadgen.publishers import Pacer  # noqa: E402
from bench.loadgen.subscribers import BIN_NS, Receiver  # noqa: E402
from bench.loadgen.sites import LOOPBACK, Site, connection_states  # noqa: E402
from bench.media_loop import MediaParams, load  # noqa: E402
from media import aiortc_seams as seams  # noqa: E402

log = logging.getLogger("loadgen")


def emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


async def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    for noisy in ("aiortc", "aioice", "socketio", "engineio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    seams.speed_up_negotiation()  # the generator's SDP work must not starve its own publishers
    config = json.loads(sys.stdin.readline())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    media = load(MediaParams())
    receiver = Receiver(config["measure_delay"])
    http = aiohttp.ClientSession()
    if config["control"] == "sio":
        control: Any = SioControl(config["url"])
    elif config["control"] == "janus":
        control = JanusControl(config["url"], config["room"], http)
    else:
        control = BenchControl(config["url"], http)
    sites = [Site(name=s["name"], audio=s["audio"], video=s["video"], subscribe=s["subscribe"],
                  speaking=s.get("speaking", False), last_n=s.get("last_n"), token=s.get("token"),
                  control=control, receiver=receiver, trailer=config["trailer"],
                  ice_addresses=config.get("ice_addresses") or list(LOOPBACK))
             for s in config["sites"]]
    pacer = Pacer(media)
    pacer_task: asyncio.Task[None] | None = None
    concurrency = asyncio.Semaphore(config.get("concurrency", 4))

    async def limited(coro: Any) -> None:
        async with concurrency:
            await coro

    try:
        await asyncio.gather(*(limited(s.control.join(s)) for s in sites))
        await asyncio.gather(*(limited(s.publish()) for s in sites if s.audio or s.video))
        start = time.monotonic() + 0.1
        for i, site in enumerate(sites):
            for stream in site.streams:
                pacer.add(stream, start + (i * 0.0137) % 0.066)
        pacer_task = asyncio.ensure_future(pacer.run())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
                s.send_pc is not None and s.send_pc.connectionState != "connected" for s in sites):
            await asyncio.sleep(0.2)
        emit("published", states=connection_states(sites))
        cpu0 = 0.0
        t0 = 0.0
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "quit":
                break
            if line == "subscribe":
                # One at a time, with a pause: each is a large offer/answer that keeps the SFU's and
                # this process's event loops busy; aioice's consent checks (one try, ~0.5 s, every
                # ~5 s) close a connection after 6 consecutive misses.
                for site in sites:
                    if site.subscribe:
                        await site.do_subscribe()
                        await asyncio.sleep(config.get("subscribe_pause", 0.0))
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and any(
                        s.recv_pc is not None and s.recv_pc.connectionState != "connected" for s in sites):
                    await asyncio.sleep(0.2)
                emit("subscribed", streams=len(receiver.streams), states=connection_states(sites))
            elif line == "start":
                receiver.reset()
                receiver.measuring = True
                for site in sites:
                    for stream in site.streams:
                        stream.sent = 0
                        stream.window_frames = [] if config["measure_delay"] == "frames" else None
                cpu0, t0 = cpu_seconds(), time.monotonic()
                emit("started")
            elif line == "stop":
                receiver.measuring = False
                cpu = cpu_seconds() - cpu0
                elapsed = time.monotonic() - t0
                streams = [
                    {"publisher": s.publisher, "kind": s.kind, "received": s.count,
                     "expected": (s.max - s.base + 1) if s.base >= 0 else 0}
                    for s in receiver.streams.values()
                ]
                sent = {f"{st.site}/{st.kind}": st.sent for site in sites for st in site.streams}
                frames_sent = {f"{st.site}": st.window_frames for site in sites for st in site.streams
                               if st.kind == "video" and st.window_frames is not None}
                hist = {kind: {i: n for i, n in enumerate(h) if n} for kind, h in receiver.hist.items()}
                emit("result", states=connection_states(sites), cpu_seconds=cpu, elapsed=elapsed, streams=streams, sent=sent,
                     hist=hist, bin_ns=BIN_NS, frames=receiver.frames, frames_sent=frames_sent,
                     unknown=receiver.unknown, rtcp=receiver.rtcp, trailer_missing=receiver.trailer_missing,
                     unprotect_errors=receiver.unprotect_errors,
                     send_failures=sum(st.send_failures for site in sites for st in site.streams))
    finally:
        if pacer_task is not None:
            pacer_task.cancel()
        for site in sites:
            try:
                await asyncio.wait_for(site.close(), 5)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        await http.close()


if __name__ == "__main__":
    asyncio.run(main())
