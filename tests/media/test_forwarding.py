"""End to end on loopback: publisher -> Router -> two subscribers, packet forwarding."""

from __future__ import annotations

import struct

from av import AudioFrame, VideoFrame
from sfu_harness import Harness, recv_frames, wait_for

from media import aiortc_seams as seams
from media.rtcp import SenderReport, parse_compound

_HDR = struct.Struct("!BBHII")


def _rtp_fields(data: bytes) -> tuple[int, int, int, int]:
    _, b1, seq, ts, ssrc = _HDR.unpack_from(data)
    return ssrc, seq, ts, b1 & 0x7F


async def test_two_subscribers_decode_forwarded_media(harness: Harness) -> None:
    alice = await harness.publisher("alice")
    subs = [await harness.subscriber(name, list(alice.producers.values())) for name in ("bob", "carol")]
    for sub in subs:
        await wait_for(lambda: len(sub.tracks) == 2)
        for track in sub.tracks:
            frames = await recv_frames(track, 5, timeout=15)
            kind = VideoFrame if track.kind == "video" else AudioFrame
            assert all(isinstance(f, kind) for f in frames)
    for producer in alice.producers.values():
        assert producer.stats.packets > 0
        assert len(producer.consumers) == 2
        for consumer in producer.consumers:
            assert consumer.stats.packets_sent > 0
            assert consumer.ssrc != producer.ssrc


async def test_rewritten_ssrc_seq_ts_pt_and_truthful_sender_reports(harness: Harness) -> None:
    alice = await harness.publisher("alice")
    video = alice.producers["video"]
    server_dtls = seams.dtls_transports(alice.transport.peer_connection)[0]
    inbound: dict[int, tuple[int, int, int, int]] = {}
    publisher_srs: list[SenderReport] = []

    def tap_in(data: bytes) -> bool:
        fields = _rtp_fields(data)
        if fields[0] == video.ssrc:
            inbound[fields[1]] = fields
        return True

    def tap_in_rtcp(data: bytes) -> bool:
        publisher_srs.extend(p for p in parse_compound(data) if isinstance(p, SenderReport))
        return True

    seams.install_rtp_filter(server_dtls, tap_in)
    seams.install_rtcp_filter(server_dtls, tap_in_rtcp)

    bob = await harness.subscriber("bob", [video])
    consumer = video.consumers[0]
    outbound: list[tuple[int, int, int, int]] = []
    subscriber_srs: list[SenderReport] = []
    client_dtls = seams.dtls_transports(bob.pc)[0]
    seams.install_rtp_filter(client_dtls, lambda d: outbound.append(_rtp_fields(d)) or True)
    seams.install_rtcp_filter(
        client_dtls,
        lambda d: subscriber_srs.extend(p for p in parse_compound(d) if isinstance(p, SenderReport)) or True,
    )
    await wait_for(lambda: len(outbound) >= 60 and len(subscriber_srs) >= 2, timeout=15)

    assert consumer.parameters is not None
    media = [o for o in outbound if o[0] == consumer.ssrc]
    assert len(media) >= 60
    assert {o[3] for o in media} == {consumer.parameters.payload_type}
    assert video.ssrc not in {o[0] for o in outbound}
    seqs = sorted({o[1] for o in media})
    assert seqs[-1] - seqs[0] + 1 == len(seqs), "rewritten sequence numbers must be contiguous"
    seq_offsets, ts_offsets = set(), set()
    for ssrc, seq, ts, _ in media:
        original = inbound.get((seq - consumer._seq_offset) & 0xFFFF)
        if original is not None:
            seq_offsets.add((seq - original[1]) & 0xFFFF)
            ts_offsets.add((ts - original[2]) & 0xFFFFFFFF)
    assert seq_offsets == {consumer._seq_offset}
    assert ts_offsets == {consumer._ts_offset}

    # Every SR the subscriber got is a publisher SR translated into the rewritten timestamp space.
    ours = [sr for sr in subscriber_srs if sr.ssrc == consumer.ssrc]
    assert ours
    by_ntp = {sr.ntp_timestamp: sr for sr in publisher_srs if sr.ssrc == video.ssrc}
    for sr in ours:
        original = by_ntp[sr.ntp_timestamp]
        assert (sr.rtp_timestamp - original.rtp_timestamp) & 0xFFFFFFFF == consumer._ts_offset
        assert sr.packet_count <= consumer.stats.packets_sent
