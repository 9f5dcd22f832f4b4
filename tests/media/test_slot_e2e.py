"""Slots end to end with real aiortc peer connections on loopback: a receiving connection
negotiated once with a SlotSet (WebRtcTransport.create_slots), whose slots the router fills and
switches (pins, publishers coming, cameras turned off) without any SDP while the receiver keeps
decoding."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import pytest
from sfu_harness import LOOPBACK, Harness, PatternTrack, ToneTrack, client_pc, wait_for

from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.rtp import RtcpPsfbPacket, pack_remb_fci
from media import Producer
from media import aiortc_seams as seams
from media.rtcp import Pli, build_fir, build_pli, parse_compound
from media.rtp_packet import RtpPacketView
from media.slot_report import SlotSwitch


@dataclass
class Pub:
    video: Producer
    audio: Producer | None
    width: int
    #: When a PLI for this publisher's video arrived at its client.
    plis: list[float] = field(default_factory=list)


async def publish(harness: Harness, name: str, width: int, height: int, *, audio: bool = False) -> Pub:
    """A publisher of video (and a silent voice: no dominant speaker moves the slots here)."""
    pc = client_pc()
    harness.pcs.append(pc)
    if audio:
        pc.addTrack(ToneTrack(0.0))
    pc.addTrack(PatternTrack(width, height))
    seams.configure_ice(pc, LOOPBACK, [])
    await pc.setLocalDescription(await pc.createOffer())
    transport = harness.router.create_transport(name, "send")
    answer = await transport.accept_offer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    producers = {t.kind: transport.produce(t.mid) for t in transport.offered_tracks()}
    pub = Pub(video=producers["video"], audio=producers.get("audio"), width=width)

    def tap(data: bytes) -> bool:
        for packet in parse_compound(data):
            if isinstance(packet, Pli) and packet.media_ssrc == pub.video.ssrc:
                pub.plis.append(time.monotonic())
        return True

    seams.install_rtcp_filter(seams.dtls_transports(pc)[0], tap)
    return pub


class Frames:
    """Reads a receiving track: (arrival time, frame width or 0 for audio) per decoded frame."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.frames: list[tuple[float, int]] = []
        self.task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        while True:
            frame = await track.recv()
            self.frames.append((asyncio.get_running_loop().time(), getattr(frame, "width", 0)))

    async def shows(self, width: int, *, more: int = 5, timeout: float = 10) -> None:
        """Wait for ``more`` new frames, the last of them ``width`` wide."""
        before = len(self.frames)
        await wait_for(lambda: len(self.frames) > before + more and self.frames[-1][1] == width, timeout=timeout)


@pytest.mark.timeout(60)
async def test_receiver_decodes_continuously_across_slot_switches(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    small = (await publish(harness, "alice", 160, 120)).video
    large = (await publish(harness, "bob", 176, 144)).video
    sub = await harness.subscriber("carol", videos=0, audios=0)  # the one negotiation: the stage only
    router = harness.router
    slot = sub.slot("stage-video")
    assert slot.ready and slot.parameters is not None and slot.parameters.codec_name == "VP8"
    sdps = sub.sdps()
    switches: list[SlotSwitch] = sub.switches
    reader = Frames(sub.track("stage-video"))
    sizes = reader.frames
    try:
        # Nobody spoke: the first publisher is on the stage.
        await wait_for(lambda: slot.source is small and any(w == 160 for _, w in sizes), timeout=15)
        caplog.clear()
        caplog.set_level(logging.WARNING, logger="aiortc.rtcrtpreceiver")
        order = [large, small, large, small]
        for producer in order:
            router.set_own_pin("carol", producer.participant_id)  # carol's own stage
            await wait_for(lambda: slot.source is producer, timeout=10)
            await reader.shows(176 if producer is large else 160, more=10)
        stage_video = [s for s in switches if s.slot_id == "stage-video"]
        assert [s.producer_id for s in stage_video] == [p.id for p in (small, *order)]
        assert [s.sequence for s in stage_video] == sorted(s.sequence for s in stage_video)
        assert len({s.sequence for s in switches}) == len(switches), "one sequence for the whole set"
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
        assert sub.sdps() == sdps, "never renegotiated"
        assert slot.stats.packets_sent > 0 and slot.stats.late_drops == 0
    finally:
        reader.task.cancel()


@pytest.mark.timeout(60)
async def test_slot_set_negotiated_once_follows_the_router(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    router = harness.router
    alice = await publish(harness, "alice", 160, 120, audio=True)
    bob = await publish(harness, "bob", 176, 144, audio=True)
    sub = await harness.subscriber("carol", videos=2, audios=1)
    transport, pc, slot_set = sub.transport, sub.pc, sub.slot_set
    assert slot_set.slot_ids() == ["stage-audio", "stage-video", "video-0", "video-1", "audio-0"]
    assert [t.mid for t in pc.getTransceivers()] == [s.mid for s in slot_set.slots.values()]
    assert all(s.ready for s in slot_set.slots.values())
    # msid: the stage's audio and video are one stream; every other slot is its own.
    remote_sdp = pc.remoteDescription.sdp
    local_sdp = transport.peer_connection.localDescription.sdp
    streams = {line.split()[0].split(":")[1] for line in remote_sdp.splitlines() if line.startswith("a=msid:")}
    assert streams == {"stage", "video-0", "video-1", "audio-0"}

    videos = {sid: Frames(sub.track(sid)) for sid in ("stage-video", "video-0", "video-1")}
    voices = {sid: Frames(sub.track(sid)) for sid in ("stage-audio", "audio-0")}
    producers: dict[str, Producer] = {}

    async def expect(slots: dict[str, Pub | None]) -> None:
        """The router put each Pub's video (stage-video, video-N) or voice (stage-audio, audio-0) in
        the slot; the receiver decodes it there."""
        for p in slots.values():
            if p is not None:
                producers.update({p.video.id: p.video, p.audio.id: p.audio})  # type: ignore[union-attr]
        for sid, p in slots.items():
            slot = slot_set.slots[sid]
            want = None if p is None else p.video if slot.kind == "video" else p.audio
            await wait_for(lambda: slot.target is want, timeout=5)
            if p is None:
                continue
            if slot.kind == "video":
                await videos[sid].shows(p.width)
                continue
            await wait_for(lambda: slot.source is want, timeout=5)
            sent, heard = slot.stats.packets_sent, len(voices[sid].frames)
            await wait_for(lambda: slot.stats.packets_sent > sent + 10 and len(voices[sid].frames) > heard + 10, timeout=5)

    caplog.set_level(logging.WARNING, logger="aiortc.rtcrtpreceiver")
    readers = [*videos.values(), *voices.values()]
    try:
        # Nobody spoke: alice (first) on the stage, bob in a thumbnail; the pinned bob is also heard.
        router.set_pinned({"bob"})
        await expect({"stage-video": alice, "stage-audio": alice, "video-0": bob, "video-1": None, "audio-0": bob})
        caplog.clear()
        # carol pins bob to her stage: bob takes the stage, alice his thumbnail and the extra voice.
        router.set_own_pin("carol", "bob")
        await expect({"stage-video": bob, "stage-audio": bob, "video-0": alice, "video-1": None, "audio-0": alice})
        # A new publisher: dave takes the free thumbnail; the others stay where they are.
        dave = await publish(harness, "dave", 192, 144, audio=True)
        await expect({"stage-video": bob, "video-0": alice, "video-1": dave})
        # alice turns her camera off: her thumbnail empties, dave stays in his.
        alice.video.pause()
        await expect({"stage-video": bob, "video-0": None, "video-1": dave})
        gone = len(videos["video-0"].frames)
        # Together (one refill): nobody pinned any more, carol pins dave, alice's camera is back: alice
        # and bob fill the thumbnails in slot order (dave's freed video-1 included).
        switched = len(sub.switches)
        with router.batch():
            router.set_pinned(())
            router.set_own_pin("carol", "dave")
            alice.video.resume()
            assert len(sub.switches) == switched and slot_set.slots["stage-video"].target is bob.video
        await expect({"stage-video": dave, "stage-audio": dave, "video-0": alice, "video-1": bob, "audio-0": alice})
        assert len(videos["video-0"].frames) > gone + 5, "a freed thumbnail decodes again once filled"

        decode_errors = [r for r in caplog.records if "failed to decode" in r.getMessage()]
        assert decode_errors == [], "no undecodable frame across the switches"
        for sid in ("stage-video", "video-1"):  # never empty since filled: no gap over 1.5 s
            times = [t for t, _ in videos[sid].frames]
            assert max(b - a for a, b in zip(times, times[1:])) < 1.5, sid

        # PLI from the receiver reaches the slot's current source (and only through that slot).
        egress = seams.SrtpEgress(seams.dtls_transports(pc)[0])
        await asyncio.sleep(0.6)  # leave the producers' PLI throttle window of the switches
        for sid, source in (("stage-video", dave), ("video-1", bob)):
            slot = slot_set.slots[sid]
            before, requests = len(source.plis), slot.stats.keyframe_requests_received
            assert egress.send_rtcp(build_pli(0x1234, slot.ssrc))
            await wait_for(lambda: len(source.plis) > before, timeout=2)
            assert slot.stats.keyframe_requests_received == requests + 1

        # FIR and REMB reach the right slot too.
        slot = slot_set.slots["video-0"]
        before = len(alice.plis)
        assert egress.send_rtcp(build_fir(0x1234, slot.ssrc, 1))
        await wait_for(lambda: len(alice.plis) > before, timeout=2)
        remb = RtcpPsfbPacket(fmt=15, ssrc=0x1234, media_ssrc=0, fci=pack_remb_fci(123_000, [slot.ssrc]))
        # The client's own receiver sends REMB too (its estimate overwrites ours): send ours on every
        # poll until one is the last the slot saw (it raced the client's under load in .ci/run).
        await wait_for(lambda: egress.send_rtcp(bytes(remb)) and slot.stats.remb_bitrate == 123_000, timeout=5)

        # NACK from the receiver: the lost packets of video-1 (bob's) come back over RTX from the
        # history of the producer that was the source when they were sent.
        slot = slot_set.slots["video-1"]
        dropped: dict[int, bytes] = {}
        recovered: dict[int, bytes] = {}

        def lossy(data: bytes) -> bool:
            packet = RtpPacketView.parse(data)
            if packet.ssrc == slot.rtx_ssrc:
                body = data[packet.payload_start:]
                recovered[int.from_bytes(body[:2], "big")] = body[2:]
            elif packet.ssrc == slot.ssrc:
                seq = packet.sequence_number
                if seq % 10 == 3 and seq not in dropped and len(dropped) < 5:
                    dropped[seq] = data[packet.payload_start:]
                    return False
            return True

        seams.install_rtp_filter(seams.dtls_transports(pc)[0], lossy)
        await wait_for(lambda: len(dropped) == 5, timeout=10)
        await wait_for(lambda: dropped.keys() <= recovered.keys(), timeout=5)
        assert all(recovered[seq] == body for seq, body in dropped.items())
        assert slot.stats.nacks_received >= 1 and slot.stats.retransmitted >= 5
        assert bob.video.stats.nacks_sent == 0, "answered from the server's history"

        # Negotiated once: the receiver's remote description and the server's local one never changed.
        assert pc.remoteDescription.sdp == remote_sdp
        assert transport.peer_connection.localDescription.sdp == local_sdp
        # Sender reports of the slots go out with the transport's reports.
        sent = {sid: s.stats.sender_reports_sent for sid, s in slot_set.slots.items()}
        transport.send_reports()
        assert all(s.stats.sender_reports_sent > sent[sid] for sid, s in slot_set.slots.items() if s.forwarding)
    finally:
        for reader in readers:
            reader.task.cancel()

    # Closing the transport closes the slot set and each slot (cascade, with close events).
    closed: list[str] = []
    slot_set.on("close", lambda: closed.append("set"))
    for sid, s in slot_set.slots.items():
        s.on("close", lambda sid=sid: closed.append(sid))
    await transport.close()
    assert slot_set.closed and all(s.closed for s in slot_set.slots.values())
    assert closed == [*slot_set.slot_ids(), "set"]
    assert all(not p.sinks for p in producers.values())
