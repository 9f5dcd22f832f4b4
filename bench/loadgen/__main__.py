"""The load generator process: reads its configuration, runs its sites, obeys the commands of
bench/forwarding.py (see bench/loadgen/__init__.py) and prints JSON events."""

from __future__ import annotations

import asyncio
import gc
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


def join_figures(sites: list[Site], receiver: Receiver, expect_video: int, slot_events: bool) -> dict[str, Any]:
    """Per subscribing site: when it received its ``expect_video`` remote videos through its slots
    (monotonic seconds): the ``expect_video``-th video slot delivered its first packet and, with
    ``slot_events`` (the real signaling), a ``slot`` event named who the ``expect_video``-th video
    slot carries; when its first remote keyframe arrived, and its stream counts."""
    out: dict[str, Any] = {}
    for site in sites:
        if not site.subscribe:
            continue
        seen = receiver.first_seen.get(site.name, {})
        video = sorted(t for ssrc, t in seen.items()
                       if ssrc in receiver.streams and receiver.streams[ssrc].kind == "video")
        audio = sum(1 for ssrc in seen if ssrc in receiver.streams and receiver.streams[ssrc].kind == "audio")
        named = site.video_slots_named()
        ready = len(video) >= expect_video and (expect_video > 0 or bool(seen))
        if slot_events:
            ready = ready and len(named) >= expect_video
        ready_at = None
        if ready and expect_video:
            ready_at = max(video[expect_video - 1], named[expect_video - 1] if slot_events else 0) / 1e9
        keyframe = receiver.first_keyframe.get(site.name)
        out[site.name] = {"video_streams": len(video), "audio_streams": audio, "offers": site.offers,
                          "video_slots_named": len(named), "slot_events": site.slot_events,
                          "ready_at": ready_at,
                          "first_video_at": video[0] / 1e9 if video else None,
                          "first_keyframe_at": keyframe / 1e9 if keyframe else None,
                          "keyframe_check_error": receiver.keyframe_check_errors.get(site.name)}
    return {"sites": out, "all_ready": all(s["ready_at"] is not None for s in out.values())}


class LoopWatch:
    """This process's own event-loop lag and GC pauses during the window: the added delay is measured
    here too (a packet's arrival is stamped when this loop gets to it), so a stall here shows as delay."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.gc_ms: list[float] = []
        self._gc_start = 0.0
        self.measuring = False
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self.measuring:
            self.gc_ms.append((time.perf_counter() - self._gc_start) * 1000)

    async def run(self) -> None:
        while True:
            deadline = time.monotonic() + 0.002
            await asyncio.sleep(0.002)
            if self.measuring:
                self.lags.append((time.monotonic() - deadline) * 1000)

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.lags)
        return {"loop_lag_max_ms": round(lags[-1], 2) if lags else None,
                "loop_lag_p99_ms": round(lags[int(0.99 * (len(lags) - 1))], 2) if lags else None,
                "loop_lags_over_20ms": sum(1 for lag in lags if lag > 20),
                "gc_max_ms": round(max(self.gc_ms, default=0.0), 2),
                "gc_pauses_over_20ms": sum(1 for ms in self.gc_ms if ms > 20)}


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
                  speaking=s.get("speaking", False), last_n=s.get("last_n"), audios=s.get("audios"),
                  token=s.get("token"),
                  control=control, receiver=receiver, trailer=config["trailer"],
                  ice_addresses=config.get("ice_addresses") or list(LOOPBACK))
             for s in config["sites"]]
    pacer = Pacer(media)
    pacer_task: asyncio.Task[None] | None = None
    concurrency = asyncio.Semaphore(config.get("concurrency", 4))

    async def limited(coro: Any) -> None:
        async with concurrency:
            await coro

    late = bool(config.get("late"))
    slot_events = config["control"] == "sio"  # the real signaling names who each slot carries
    watch = LoopWatch()
    watch_task = asyncio.ensure_future(watch.run())
    try:
        join_at = time.monotonic()  # the first join request of this process
        if config.get("staggered"):
            # As pages do: each site joins, publishes and subscribes, then the next one (the other
            # load generator processes do the same at the same time).
            pacer_task = asyncio.ensure_future(pacer.run())
            for i, site in enumerate(sites):
                await site.control.join(site)
                if site.audio or site.video:
                    await site.publish()
                    start = time.monotonic() + 0.05
                    for stream in site.streams:
                        pacer.add(stream, start + (i * 0.0137) % 0.066)
                if site.subscribe:
                    await site.do_subscribe()
                await asyncio.sleep(config.get("subscribe_pause", 0.0))
        else:
            await asyncio.gather(*(limited(s.control.join(s)) for s in sites))
            await asyncio.gather(*(limited(s.publish()) for s in sites if s.audio or s.video))
            start = time.monotonic() + 0.1
            for i, site in enumerate(sites):
                for stream in site.streams:
                    pacer.add(stream, start + (i * 0.0137) % 0.066)
            pacer_task = asyncio.ensure_future(pacer.run())
        if late:  # a site joining a running session: subscribes at once, as the page does
            published_at = time.monotonic()
            await asyncio.gather(*(s.do_subscribe() for s in sites if s.subscribe))
            answered_at = time.monotonic()
            connected_at = None
            deadline = time.monotonic() + config.get("late_timeout", 60)
            names = [s.name for s in sites if s.subscribe]
            while time.monotonic() < deadline and not all(n in receiver.first_keyframe for n in names):
                if connected_at is None and all(s.recv_pc is not None and s.recv_pc.connectionState == "connected"
                                                for s in sites if s.subscribe):
                    connected_at = time.monotonic()
                await asyncio.sleep(0.01)
            # Phases of the late join (monotonic s): joined and published, subscribe answered, receiving
            # connection up (ICE + DTLS); the first video packet is in the site's figures.
            emit("late", join_at=join_at, published_at=published_at, answered_at=answered_at,
                 recv_connected_at=connected_at,
                 **join_figures(sites, receiver, config.get("expect_video", 0), slot_events))
        else:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(
                    s.send_pc is not None and s.send_pc.connectionState != "connected" for s in sites):
                await asyncio.sleep(0.2)
            emit("published", states=connection_states(sites), join_at=join_at)
        cpu0 = 0.0
        t0 = 0.0
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "quit":
                break
            if line == "subscribe":
                # One at a time, with a pause (--subscribe-pause): each is an offer/answer of 13 m-lines
                # (the slots) that keeps the SFU's and this process's event loops busy for a moment;
                # aioice's consent checks (one try, ~0.5 s, every ~5 s) close a connection after 6
                # consecutive misses.
                for site in sites:
                    if site.subscribe and site.recv_pc is None:  # (--join-order staggered: done already)
                        await site.do_subscribe()
                        await asyncio.sleep(config.get("subscribe_pause", 0.0))
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and any(
                        s.recv_pc is not None and s.recv_pc.connectionState != "connected" for s in sites):
                    await asyncio.sleep(0.2)
                emit("subscribed", streams=len(receiver.streams), states=connection_states(sites))
            elif line == "ready":
                # Wait until every subscribing site receives its expected remote video streams.
                expect = config.get("expect_video", 0)
                deadline = time.monotonic() + config.get("ready_timeout", 120)
                while time.monotonic() < deadline and not join_figures(sites, receiver, expect, slot_events)["all_ready"]:
                    await asyncio.sleep(0.05)
                emit("ready", **join_figures(sites, receiver, expect, slot_events))
            elif line == "offers":
                emit("offers", offers={s.name: s.offers for s in sites if s.subscribe})
            elif line == "start":
                receiver.reset()
                receiver.measuring = True
                watch.measuring = True
                for site in sites:
                    for stream in site.streams:
                        stream.sent = 0
                        stream.window_frames = [] if config["measure_delay"] == "frames" else None
                cpu0, t0 = cpu_seconds(), time.monotonic()
                emit("started")
            elif line == "stop":
                receiver.measuring = False
                watch.measuring = False
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
                emit("result", loop=watch.summary(), states=connection_states(sites), cpu_seconds=cpu, elapsed=elapsed, streams=streams, sent=sent,
                     hist=hist, bin_ns=BIN_NS, frames=receiver.frames, frames_sent=frames_sent,
                     unknown=receiver.unknown, rtcp=receiver.rtcp, trailer_missing=receiver.trailer_missing,
                     unprotect_errors=receiver.unprotect_errors,
                     send_failures=sum(st.send_failures for site in sites for st in site.streams))
    finally:
        watch_task.cancel()
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
