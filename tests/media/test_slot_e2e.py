"""A slot end to end with real aiortc peer connections on loopback: one receiving connection,
negotiated once, while the slot's source switches between two publishers back and forth.

The transport does not negotiate slots yet (issue 11: wiring comes next), so this test borrows a
consumer's m-line: it consumes one producer once, negotiates, pauses that consumer and puts a
Slot with the same SSRCs and negotiated parameters in its place (including its entry in the
transport's SSRC table, so the receiver's PLIs and NACKs reach the slot).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from sfu_harness import LOOPBACK, Harness, PatternTrack, client_pc, wait_for

from aiortc import RTCSessionDescription
from media import Producer
from media import aiortc_seams as seams
from media.slot import Slot, SlotSwitch


async def publish(harness: Harness, name: str, width: int, height: int) -> Producer:
    pc = client_pc()
    harness.pcs.append(pc)
    pc.addTrack(PatternTrack(width, height))
    seams.configure_ice(pc, LOOPBACK, [])
    await pc.setLocalDescription(await pc.createOffer())
    transport = harness.router.create_transport(name, "send")
    answer = await transport.accept_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    (track,) = transport.offered_tracks()
    return transport.produce(track.mid)


@pytest.mark.timeout(60)
async def test_receiver_decodes_continuously_across_slot_switches(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    small = await publish(harness, "alice", 160, 120)
    large = await publish(harness, "bob", 176, 144)
    sub = await harness.subscriber("carol", [small])  # the one and only negotiation
    await wait_for(lambda: len(sub.tracks) == 1)
    transport = sub.transport
    (consumer,) = transport.consumers.values()
    assert consumer.parameters is not None
    consumer.pause()
    slot = Slot(slot_id="video-0", kind="video", ssrc=consumer.ssrc, rtx_ssrc=consumer.rtx_ssrc,
                cname=consumer.cname, stream_id="video-0", send_rtp=transport._send_rtp,
                send_rtcp=transport._send_rtcp)
    slot.configure(consumer.parameters)
    transport._consumer_by_ssrc[consumer.ssrc] = slot  # type: ignore[assignment]
    transport._consumer_by_ssrc[consumer.rtx_ssrc] = slot  # type: ignore[assignment]
    local_sdp = transport.peer_connection.localDescription.sdp
    switches: list[SlotSwitch] = []
    slot.on("switch", switches.append)

    sizes: list[tuple[float, int]] = []

    async def receive() -> None:
        track = sub.tracks[0]
        while True:
            frame = await track.recv()
            sizes.append((asyncio.get_running_loop().time(), frame.width))

    reader = asyncio.ensure_future(receive())
    try:
        slot.switch_to(small)
        await wait_for(lambda: any(w == 160 for _, w in sizes), timeout=15)
        caplog.clear()
        caplog.set_level(logging.WARNING, logger="aiortc.rtcrtpreceiver")
        order = [large, small, large, small]
        for producer in order:
            slot.switch_to(producer)
            width = producer.id == large.id and 176 or 160
            before = len(sizes)
            await wait_for(lambda: slot.source is producer, timeout=10)
            await wait_for(lambda: len(sizes) > before + 10 and sizes[-1][1] == width, timeout=10)
        assert [s.producer_id for s in switches] == [p.id for p in (small, *order)]
        assert [s.sequence for s in switches] == [1, 2, 3, 4, 5]
        decode_errors = [r for r in caplog.records if "failed to decode" in r.getMessage()]
        assert decode_errors == [], "no corrupt or undecodable frame across the switches"
        # Frames keep coming: no gap longer than 1.5 s between decoded frames after the first one.
        times = [t for t, _ in sizes]
        assert max(b - a for a, b in zip(times, times[1:])) < 1.5
        # Each switch shows only the new size from its first frame on (no frame of the old source
        # after the new one appeared).
        widths = [w for _, w in sizes]
        changes = sum(1 for a, b in zip(widths, widths[1:]) if a != b)
        assert changes == len(order)
        assert transport.peer_connection.localDescription.sdp == local_sdp, "never renegotiated"
        assert slot.stats.packets_sent > 0 and slot.stats.late_drops == 0
    finally:
        reader.cancel()
        slot.close()
