"""Room-level behaviour on loopback: dominant speaker, slots following speakers, pins and last-N, server
mute, malformed input, close."""

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
    carol = await harness.subscriber("carol", videos=0, audios=1)
    sdps = carol.sdps()
    stage = carol.slot("stage-audio")
    alice_audio, bob_audio = alice.producers["audio"], bob.producers["audio"]
    await wait_for(lambda: harness.router.dominant_speaker == "alice", timeout=10)
    await wait_for(lambda: stage.source is alice_audio, timeout=5)

    assert alice.audio and bob.audio
    alice.audio.amplitude, bob.audio.amplitude = 0.0, 0.5
    await wait_for(lambda: harness.router.dominant_speaker == "bob", timeout=10)
    assert changes == ["alice", "bob"]
    assert harness.router.speaker_order[:2] == ["bob", "alice"]
    # The stage's voice follows the dominant speaker; the one before takes the extra audio slot.
    await wait_for(lambda: stage.source is bob_audio and carol.slot("audio-0").source is alice_audio, timeout=5)

    # Server-side mute (floor control): bob's audio is no longer forwarded, nor counted as speech.
    harness.router.set_participant_audio_muted("bob", True)
    await asyncio.sleep(0.1)
    before = stage.stats.packets_sent
    await asyncio.sleep(0.5)
    assert stage.target is bob_audio and stage.stats.packets_sent == before, "the stage is silent"
    assert bob_audio.stats.dropped_muted > 0
    alice.audio.amplitude, bob.audio.amplitude = 0.5, 0.5
    await wait_for(lambda: harness.router.dominant_speaker == "alice", timeout=10)
    await wait_for(lambda: stage.source is alice_audio, timeout=5)
    # A muted voice takes no extra audio slot.
    assert not any(s.target is bob_audio for s in carol.slot_set.slots.values())
    harness.router.set_producer_muted(bob_audio.id, False)
    await wait_for(lambda: carol.slot("audio-0").source is bob_audio, timeout=5)
    extra = carol.slot("audio-0")
    sent = extra.stats.packets_sent
    await wait_for(lambda: extra.stats.packets_sent > sent + 10, timeout=5)
    assert carol.transport.stats.malformed_rtp == 0
    assert carol.sdps() == sdps, "negotiated once: speakers, mutes and switches change no SDP"


async def test_slots_follow_speakers_pins_and_last_n() -> None:
    """Publishers come, speak, pin and leave: the subscriber's slots switch, its SDP never changes."""
    router = Router(MediaConfig(ice_bind_addresses=LOOPBACK, speaker_switch_ms=600), router_id="slots")
    harness = Harness(router)
    try:
        alice = await harness.publisher("alice", amplitude=0.0)
        bob = await harness.publisher("bob", amplitude=0.0)
        carol = await harness.subscriber("carol", videos=1, audios=1)
        sdps = carol.sdps()
        a_video, b_video = alice.producers["video"], bob.producers["video"]
        stage, thumb = carol.slot("stage-video"), carol.slot("video-0")

        async def flowing(slot_source: dict[str, object]) -> None:
            """Each slot's source is the one given (None: empty) and its packets go out."""
            for slot_id, producer in slot_source.items():
                slot = carol.slot(slot_id)
                await wait_for(lambda: slot.source is producer and slot.target is producer, timeout=10)
                if producer is not None:
                    sent = slot.stats.packets_sent
                    await wait_for(lambda: slot.stats.packets_sent > sent + 3, timeout=10)

        # Nobody spoke yet: the first publisher on the stage, the other one in the thumbnail.
        await flowing({"stage-video": a_video, "video-0": b_video})
        # bob speaks: he takes the stage, alice moves to the thumbnail.
        assert bob.audio
        bob.audio.amplitude = 0.5
        await wait_for(lambda: router.dominant_speaker == "bob", timeout=10)
        await flowing({"stage-video": b_video, "video-0": a_video, "stage-audio": bob.producers["audio"]})
        # carol pins alice to her own stage (the dominant speaker stays bob).
        router.set_own_pin("carol", "alice")
        await flowing({"stage-video": a_video, "video-0": b_video})
        # A third publisher: there is no thumbnail left for dave while bob has it.
        dave = await harness.publisher("dave", amplitude=0.0)
        await asyncio.sleep(0.2)
        assert stage.source is a_video and thumb.source is b_video
        assert not carol.carrying(dave.producers["video"])
        # last-N 1: the stage only; 0: audio only (the stage's voice stays).
        router.set_last_n("carol", 1)
        await flowing({"stage-video": a_video, "video-0": None})
        router.set_last_n("carol", 0)
        await flowing({"stage-video": None, "video-0": None, "stage-audio": alice.producers["audio"]})
        router.set_last_n("carol", None)
        await flowing({"stage-video": a_video, "video-0": b_video})
        # bob leaves: his thumbnail goes to dave.
        await bob.transport.close()
        await flowing({"stage-video": a_video, "video-0": dave.producers["video"]})
        assert carol.sdps() == sdps, "never renegotiated"
        assert carol.transport.stats.malformed_rtcp == 0
        assert "carol" not in {e.participant_id for e in carol.switches}
    finally:
        await asyncio.wait_for(harness.close(), 10)


async def test_malformed_rtp_and_rtcp_are_dropped_and_counted(harness: Harness) -> None:
    alice = await harness.publisher("alice", audio=False)
    video = alice.producers["video"]
    bob = await harness.subscriber("bob", videos=0, audios=0)
    slot = bob.slot("stage-video")
    await wait_for(lambda: slot.stats.packets_sent > 5)
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

    before = slot.stats.packets_sent
    await wait_for(lambda: slot.stats.packets_sent > before + 10, timeout=5)
    assert bob.transport.stats.malformed_rtp == 0


async def test_router_close_cascades_and_emits_close(harness: Harness) -> None:
    alice = await harness.publisher("alice")
    bob = await harness.subscriber("bob", videos=1, audios=1)
    await wait_for(lambda: all(bob.carrying(p) and bob.carrying(p)[0].stats.packets_sent > 0
                               for p in alice.producers.values()))
    closed: list[str] = []
    router = harness.router
    router.on("close", lambda: closed.append("router"))
    for transport in list(router.transports.values()):
        transport.on("close", lambda t=transport: closed.append(t.id))
    slot_set = bob.slot_set
    assert router.slot_set("bob") is slot_set
    slot_set.on("close", lambda: closed.append("slot-set"))
    objects = [*alice.producers.values(), *slot_set.slots.values()]
    for obj in objects:
        obj.on("close", lambda o=obj: closed.append(o.id))
    await asyncio.wait_for(router.close(), 10)
    assert set(closed) == {"router", "slot-set", alice.transport.id, bob.transport.id, *(o.id for o in objects)}
    assert closed[-1] == "router" and len(closed) == len(set(closed))
    assert not router.transports and not router.producers and router.slot_set("bob") is None
    assert slot_set.closed and all(s.closed and s.source is None for s in slot_set.slots.values())
    assert all(not p.sinks for p in alice.producers.values())
    assert alice.transport.connection_state == "closed" and bob.transport.connection_state == "closed"
    await router.close()  # idempotent
