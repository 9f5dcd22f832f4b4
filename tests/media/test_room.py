"""Room-level behaviour on loopback: dominant speaker, last-N, server mute, malformed input, close."""

from __future__ import annotations

import asyncio

from sfu_harness import LOOPBACK, Harness, wait_for

from media import MediaConfig, Router
from media import aiortc_seams as seams
from media.rtp_packet import build_rtp


async def test_dominant_speaker_follows_audio_level_and_server_mute(harness: Harness) -> None:
    changes: list[str | None] = []
    harness.router.on("dominant_speaker_changed", changes.append)
    alice = await harness.publisher("alice", video=False, amplitude=0.5)
    bob = await harness.publisher("bob", video=False, amplitude=0.0)
    carol = await harness.subscriber("carol", [alice.producers["audio"], bob.producers["audio"]])
    await wait_for(lambda: harness.router.dominant_speaker == "alice", timeout=10)

    assert alice.audio and bob.audio
    alice.audio.amplitude, bob.audio.amplitude = 0.0, 0.5
    await wait_for(lambda: harness.router.dominant_speaker == "bob", timeout=10)
    assert changes == ["alice", "bob"]
    assert harness.router.speaker_order[:2] == ["bob", "alice"]

    # Server-side mute (floor control): bob's audio is no longer forwarded, nor counted as speech.
    bob_audio = bob.producers["audio"]
    consumer = bob_audio.consumers[0]
    harness.router.set_participant_audio_muted("bob", True)
    await asyncio.sleep(0.1)
    before = consumer.stats.packets_sent
    await asyncio.sleep(0.5)
    assert consumer.stats.packets_sent == before
    assert bob_audio.stats.dropped_muted > 0
    alice.audio.amplitude, bob.audio.amplitude = 0.5, 0.5
    await wait_for(lambda: harness.router.dominant_speaker == "alice", timeout=10)
    harness.router.set_producer_muted(bob_audio.id, False)
    await wait_for(lambda: consumer.stats.packets_sent > before + 10, timeout=5)
    assert carol.transport.stats.malformed_rtp == 0


async def test_last_n_follows_speakers_and_pins() -> None:
    router = Router(MediaConfig(ice_bind_addresses=LOOPBACK, last_n=1), router_id="lastn")
    harness = Harness(router)
    try:
        selections: list[tuple[str, frozenset[str]]] = []
        router.on("last_n_changed", lambda sub, sel: selections.append((sub, sel)))
        alice = await harness.publisher("alice", amplitude=0.0)
        bob = await harness.publisher("bob", amplitude=0.0)
        videos = [alice.producers["video"], bob.producers["video"]]
        carol = await harness.subscriber("carol", videos)
        a_cons, b_cons = (v.consumers[0] for v in videos)
        assert router.last_n_selection("carol") == {videos[0].id}
        await wait_for(lambda: a_cons.stats.packets_sent > 5)
        assert a_cons.forwarding and not b_cons.forwarding and b_cons.stats.packets_sent == 0

        assert bob.audio
        bob.audio.amplitude = 0.5
        await wait_for(lambda: router.last_n_selection("carol") == {videos[1].id}, timeout=10)
        await wait_for(lambda: b_cons.stats.packets_sent > 5, timeout=5)
        assert not a_cons.forwarding

        router.set_pinned({"alice"})
        assert router.last_n_selection("carol") == {videos[0].id}
        assert a_cons.forwarding and not b_cons.forwarding
        assert [sel for sub, sel in selections if sub == "carol"] == [
            {videos[0].id},
            {videos[1].id},
            {videos[0].id},
        ]
        assert carol.transport.stats.malformed_rtcp == 0
    finally:
        await asyncio.wait_for(harness.close(), 10)


async def test_malformed_rtp_and_rtcp_are_dropped_and_counted(harness: Harness) -> None:
    alice = await harness.publisher("alice", audio=False)
    video = alice.producers["video"]
    await harness.subscriber("bob", [video])
    consumer = video.consumers[0]
    await wait_for(lambda: consumer.stats.packets_sent > 5)
    transport = alice.transport

    # Over the wire (SRTP-protected by the publisher): bad padding, truncated RTCP.
    egress = seams.SrtpEgress(seams.dtls_transports(alice.pc)[0])
    # (its own SSRC: SRTP replay protection is per SSRC)
    bad_padding = bytearray(build_rtp(payload_type=97, sequence_number=1, timestamp=1, ssrc=0x0BAD, payload=b"abc\xff"))
    bad_padding[0] |= 0x20
    assert egress.send_rtp(bytes(bad_padding))
    assert egress.send_rtcp(b"\x80\xc8\x00\x06" + (video.ssrc or 0).to_bytes(4, "big") + bytes(4))
    await wait_for(lambda: transport.stats.malformed_rtp >= 1 and transport.stats.malformed_rtcp >= 1, timeout=5)
    # Media reached the SFU through the synchronous SRTP ingress, not aiortc's receive coroutine.
    assert transport._ingress is not None and transport._ingress.received > 0

    # Straight into the hook: every kind of defect, never an exception.
    for garbage in (b"", b"\x80", b"\x40" + bytes(20), b"\x8f" + bytes(11), b"\x90" + bytes(11) + b"\xbe\xde\x00\x09"):
        transport._on_rtp(garbage)
    for garbage in (b"\x80", b"\x81\xc9\x00\x01" + bytes(4), b"\xa0\xcd\x00\x02" + bytes(7) + b"\x09"):
        transport._on_rtcp(garbage)
    assert transport.stats.malformed_rtp >= 6
    assert transport.stats.malformed_rtcp >= 4
    transport._on_rtp(build_rtp(payload_type=97, sequence_number=1, timestamp=1, ssrc=123456, payload=b"?"))
    assert transport.stats.unknown_ssrc >= 1

    before = consumer.stats.packets_sent
    await wait_for(lambda: consumer.stats.packets_sent > before + 10, timeout=5)


async def test_router_close_cascades_and_emits_close(harness: Harness) -> None:
    alice = await harness.publisher("alice")
    bob = await harness.subscriber("bob", list(alice.producers.values()))
    await wait_for(lambda: all(c.stats.packets_sent > 0 for p in alice.producers.values() for c in p.consumers))
    closed: list[str] = []
    router = harness.router
    router.on("close", lambda: closed.append("router"))
    for transport in list(router.transports.values()):
        transport.on("close", lambda t=transport: closed.append(t.id))
    objects = [*alice.producers.values(), *bob.transport.consumers.values()]
    for obj in objects:
        obj.on("close", lambda o=obj: closed.append(o.id))
    await asyncio.wait_for(router.close(), 10)
    assert set(closed) == {"router", alice.transport.id, bob.transport.id, *(o.id for o in objects)}
    assert closed[-1] == "router" and len(closed) == len(set(closed))
    assert not router.transports and not router.producers and not router.consumers
    assert alice.transport.connection_state == "closed" and bob.transport.connection_state == "closed"
    await router.close()  # idempotent
