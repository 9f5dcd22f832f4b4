"""End to end on loopback: publisher -> Router -> two subscribers' slots, packet forwarding."""

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
    subs = [await harness.subscriber(name, videos=1, audios=1) for name in ("bob", "carol")]
    for sub in subs:
        # Four m-lines (stage audio and video, a thumbnail, an extra voice), whoever publishes.
        await wait_for(lambda: len(sub.tracks) == 4)
        # The router put the only publisher on the stage; the other slots stay empty.
        assert sub.slot("stage-audio").target is alice.producers["audio"]
        assert sub.slot("stage-video").target is alice.producers["video"]
        assert sub.slot("video-0").target is None and sub.slot("audio-0").target is None
        for slot_id, kind in (("stage-video", VideoFrame), ("stage-audio", AudioFrame)):
            frames = await recv_frames(sub.track(slot_id), 5, timeout=15)
            assert all(isinstance(f, kind) for f in frames)
    for producer in alice.producers.values():
        assert producer.stats.packets > 0
        assert len(producer.sinks) == 2, "one slot tap per subscriber"
        for sub in subs:
            (slot,) = sub.carrying(producer)
            assert slot.stats.packets_sent > 0 and slot.stats.switches == 1
            assert slot.ssrc != producer.ssrc
    # The other participants never receive themselves: alice has no receiving connection here, and
    # bob's slots carry nobody but alice.
    assert {e.participant_id for sub in subs for e in sub.switches} == {"alice"}


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

    bob = await harness.subscriber("bob", videos=0, audios=0)
    slot = bob.slot("stage-video")
    assert slot.target is video
    outbound: list[tuple[int, int, int, int]] = []
    subscriber_srs: list[SenderReport] = []
    client_dtls = seams.dtls_transports(bob.pc)[0]
    seams.install_rtp_filter(client_dtls, lambda d: outbound.append(_rtp_fields(d)) or True)
    seams.install_rtcp_filter(
        client_dtls,
        lambda d: subscriber_srs.extend(p for p in parse_compound(d) if isinstance(p, SenderReport)) or True,
    )

    def translated() -> list[SenderReport]:
        ntps = {sr.ntp_timestamp for sr in publisher_srs if sr.ssrc == video.ssrc}
        return [sr for sr in subscriber_srs if sr.ssrc == slot.ssrc and sr.ntp_timestamp in ntps]

    await wait_for(lambda: sum(o[0] == slot.ssrc for o in outbound) >= 60 and len(translated()) >= 2, timeout=15)

    assert slot.parameters is not None and slot.source is video
    media = [o for o in outbound if o[0] == slot.ssrc]
    assert len(media) >= 60
    assert {o[3] for o in media} == {slot.parameters.payload_type}
    assert video.ssrc not in {o[0] for o in outbound}
    seqs = sorted({o[1] for o in media})
    assert seqs[-1] - seqs[0] + 1 == len(seqs), "rewritten sequence numbers must be contiguous"
    seq_offsets, ts_offsets = set(), set()
    for ssrc, seq, ts, _ in media:
        original = inbound.get((seq - slot._thin.seq_offset) & 0xFFFF)
        if original is not None:
            seq_offsets.add((seq - original[1]) & 0xFFFF)
            ts_offsets.add((ts - original[2]) & 0xFFFFFFFF)
    assert seq_offsets == {slot._thin.seq_offset}, "one epoch: the source never changed"
    assert ts_offsets == {slot._ts_offset}

    # Once the publisher sent an SR, every SR of the slot is a publisher SR translated into the slot's
    # timestamp space (before that, the server's own clock against what it sent).
    ours = [sr for sr in subscriber_srs if sr.ssrc == slot.ssrc]
    first = ours.index(translated()[0])
    by_ntp = {sr.ntp_timestamp: sr for sr in publisher_srs if sr.ssrc == video.ssrc}
    for sr in ours[first:]:
        original = by_ntp[sr.ntp_timestamp]
        assert (sr.rtp_timestamp - original.rtp_timestamp) & 0xFFFFFFFF == slot._ts_offset
        assert sr.packet_count <= slot.stats.packets_sent
