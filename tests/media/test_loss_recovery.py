"""NACK/RTX on both hops (publisher -> server, server -> a subscriber's slot), under loss injected
with the seams' packet filters."""

from __future__ import annotations

import struct

from sfu_harness import Harness, wait_for

from media import aiortc_seams as seams
from media.rtp_packet import RtpPacketView

_HDR = struct.Struct("!BBHII")


async def test_publisher_leg_loss_is_nacked_and_recovered(harness: Harness) -> None:
    alice = await harness.publisher("alice", audio=False)
    video = alice.producers["video"]
    bob = await harness.subscriber("bob", videos=0, audios=0)
    slot = bob.slot("stage-video")
    assert slot.target is video
    await wait_for(lambda: slot.stats.packets_sent > 10)

    dropped: set[int] = set()

    def lossy(data: bytes) -> bool:
        _, _, seq, _, ssrc = _HDR.unpack_from(data)
        if ssrc == video.ssrc and seq % 10 == 7 and seq not in dropped and len(dropped) < 5:
            dropped.add(seq)
            return False
        return True

    seen_by_bob: set[int] = set()

    def tap(data: bytes) -> bool:
        _, _, seq, _, ssrc = _HDR.unpack_from(data)
        if ssrc == slot.ssrc:
            seen_by_bob.add(seq)
        return True

    seams.install_rtp_filter(seams.dtls_transports(alice.transport.peer_connection)[0], lossy)
    seams.install_rtp_filter(seams.dtls_transports(bob.pc)[0], tap)
    await wait_for(lambda: len(dropped) == 5, timeout=15)
    tracker = video.nack_tracker
    assert tracker is not None
    await wait_for(lambda: tracker.recovered >= 5, timeout=10)
    assert video.stats.nacks_sent >= 5
    assert video.stats.rtx_packets >= 5
    # The recovered packets were forwarded: bob got every dropped sequence number.
    expected = {(seq + slot._thin.seq_offset) & 0xFFFF for seq in dropped}
    await wait_for(lambda: expected <= seen_by_bob, timeout=5)


async def test_subscriber_leg_loss_is_answered_from_server_history(harness: Harness) -> None:
    alice = await harness.publisher("alice", audio=False)
    video = alice.producers["video"]
    bob = await harness.subscriber("bob", videos=0, audios=0)
    slot = bob.slot("stage-video")
    assert slot.target is video
    await wait_for(lambda: slot.stats.packets_sent > 10)

    dropped: set[int] = set()
    recovered: set[int] = set()

    def lossy(data: bytes) -> bool:
        packet = RtpPacketView.parse(data)
        if packet.ssrc == slot.rtx_ssrc:
            recovered.add(struct.unpack_from("!H", data, packet.payload_start)[0])
        elif packet.ssrc == slot.ssrc:
            seq = packet.sequence_number
            if seq % 10 == 3 and seq not in dropped and len(dropped) < 5:
                dropped.add(seq)
                return False
        return True

    seams.install_rtp_filter(seams.dtls_transports(bob.pc)[0], lossy)
    await wait_for(lambda: len(dropped) == 5, timeout=15)
    await wait_for(lambda: dropped <= recovered, timeout=10)
    assert slot.stats.nacks_received >= 1
    assert slot.stats.retransmitted >= 5
    # Upstream was not bothered: the server answered from its own history.
    assert video.stats.nacks_sent == 0
