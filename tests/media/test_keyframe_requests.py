"""PLI/FIR from subscribers (on their stage slot) reach the publisher, throttled per producer."""

from __future__ import annotations

import asyncio
import time

from sfu_harness import Harness, recv_frames, wait_for

from media import aiortc_seams as seams
from media.rtcp import Pli, build_fir, build_pli, parse_compound


async def test_subscriber_pli_reaches_publisher_throttled(harness: Harness) -> None:
    alice = await harness.publisher("alice", audio=False)
    video = alice.producers["video"]
    subs = [await harness.subscriber(name, videos=0, audios=0) for name in ("bob", "carol")]
    await wait_for(lambda: all(len(s.tracks) == 2 for s in subs))
    slots = [sub.slot("stage-video") for sub in subs]
    assert all(slot.target is video for slot in slots)
    for sub in subs:
        # aiortc clients miss the first keyframe (their receiver starts after DTLS) and PLI
        # on every undecodable frame until one arrives: let that settle first.
        await recv_frames(sub.track("stage-video"), 3, timeout=10)

    plis_at_publisher: list[float] = []

    def tap(data: bytes) -> bool:
        for packet in parse_compound(data):
            if isinstance(packet, Pli) and packet.media_ssrc == video.ssrc:
                plis_at_publisher.append(time.monotonic())
        return True

    seams.install_rtcp_filter(seams.dtls_transports(alice.pc)[0], tap)
    events: list[object] = []
    harness.router.on("keyframe_requested", events.append)
    await wait_for(lambda: video._pli_timer is None, timeout=5)
    await asyncio.sleep(0.6)  # leave the throttle window of the start-up requests
    plis_at_publisher.clear()
    events.clear()
    throttled_before = video.stats.keyframe_requests_throttled

    start = time.monotonic()
    for sub, slot in zip(subs, slots):
        egress = seams.SrtpEgress(seams.dtls_transports(sub.pc)[0])
        for _ in range(4):
            assert egress.send_rtcp(build_pli(0x1234, slot.ssrc))
        assert egress.send_rtcp(build_fir(0x1234, slot.ssrc, 1))
    await wait_for(lambda: len(plis_at_publisher) >= 1, timeout=2)
    await asyncio.sleep(0.3)
    assert len(plis_at_publisher) == 1, "a burst of 10 requests yields one PLI at once"
    assert video.stats.keyframe_requests_throttled - throttled_before >= 9
    assert sum(s.stats.keyframe_requests_received for s in slots) >= 10

    # The throttled requests are coalesced into a single deferred PLI after the window.
    await wait_for(lambda: len(plis_at_publisher) >= 2, timeout=2)
    await asyncio.sleep(0.2)
    assert len(plis_at_publisher) == 2
    assert plis_at_publisher[1] - plis_at_publisher[0] >= 0.45
    assert plis_at_publisher[0] - start < 0.5
    assert events == [video, video]
