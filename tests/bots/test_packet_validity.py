"""What the publisher puts on the wire is valid media for real decoders, stamp and all."""

from __future__ import annotations

import av
import pytest

from conftest import LOOPBACK, Closer, wait_for

from bots.inprocess import connect_publisher
from bots.media_files import PreEncodedMedia
from bots.picture import read_index
from bots.publisher import Publisher
from bots.sampling import vp8_descriptor
from bots.stamp import opus_stamp_head, opus_unstamped, pack_stamp, read_stamp, source_tag
from media import aiortc_seams as seams
from media.rtcp import SenderReport, parse_compound
from media.rtp_packet import NTP_EPOCH_OFFSET, RtpPacketView

STAMP = pack_stamp(123456, 7, 1, 1_700_000_000_000_000, source_tag("p7-abcdef"))


def _decode_video(decoder_name: str, frames: list[bytes]) -> list[bytes]:
    decoder = av.CodecContext.create(decoder_name, "r")
    return [b"".join(bytes(p) for p in f.planes) for data in frames for f in decoder.decode(av.Packet(data))]


@pytest.mark.parametrize("decoder", ["vp8", "libvpx"])
def test_vp8_decoders_ignore_the_stamp(media: PreEncodedMedia, decoder: str) -> None:
    frames = media.video[:20]
    assert _decode_video(decoder, [f + STAMP for f in frames]) == _decode_video(decoder, frames)


def _decode_audio(decoder_name: str, packets: list[bytes]) -> list[bytes]:
    decoder = av.CodecContext.create(decoder_name, "r")
    decoder.sample_rate, decoder.layout = 48000, "mono"
    return [bytes(f.planes[0]) for p in packets for f in decoder.decode(av.Packet(p))]


@pytest.mark.parametrize("decoder", ["opus", "libopus"])
def test_opus_decoders_ignore_the_stamp_padding(media: PreEncodedMedia, decoder: str) -> None:
    plain = [p.data for p in media.speech[:30]]
    stamped = [opus_stamp_head(p) + STAMP for p in plain]
    assert [opus_unstamped(s) for s in stamped] == plain
    assert all(read_stamp(s) == (123456, 7, 1, 1_700_000_000_000_000, source_tag("p7-abcdef")) for s in stamped)
    assert _decode_audio(decoder, stamped) == _decode_audio(decoder, plain)


async def test_published_rtp_decodes_and_carries_levels_and_truthful_reports(sfu: Closer, media: PreEncodedMedia) -> None:
    publisher = sfu.add(Publisher(media, bind_addresses=LOOPBACK))
    producers = await connect_publisher(sfu.router, "alice", publisher)
    transport = next(t for t in sfu.router.transports.values() if t.direction == "send")
    dtls = seams.dtls_transports(transport.peer_connection)[0]
    rtp: list[bytes] = []
    rtcp: list[bytes] = []
    seams.install_rtp_filter(dtls, lambda d: rtp.append(d) or True)
    seams.install_rtcp_filter(dtls, lambda d: rtcp.append(d) or True)
    video, audio = producers["video"], producers["audio"]
    await wait_for(lambda: publisher.stats.video_frames >= 25 and any(
        isinstance(p, SenderReport) and p.ssrc == video.ssrc for d in rtcp for p in parse_compound(d)), timeout=10)

    views = [RtpPacketView.parse(d) for d in rtp]
    # Video: reassemble frames from RFC 7741 payloads; every frame decodes and shows its stamped index.
    frames: list[tuple[bytes, int, int]] = []
    parts: list[bytes] = []
    for view in (v for v in views if v.ssrc == video.ssrc):
        assert view.payload_type == video.payload_type
        size, start, _ = vp8_descriptor(view.payload)
        if start:
            parts = []
        parts.append(view.payload[size:])
        if view.marker:
            stamp = read_stamp(view.payload)
            assert stamp is not None
            frames.append((b"".join(parts), stamp.index, view.timestamp))
    assert len(frames) >= 20
    assert [b - a for (_, _, a), (_, _, b) in zip(frames, frames[1:])] == [6000] * (len(frames) - 1)
    decoder = av.CodecContext.create("libvpx", "r")
    shown = [read_index(f) for data, _, _ in frames for f in decoder.decode(av.Packet(data))]
    assert shown == [index for _, index, _ in frames]

    # Audio: stamped Opus decodes; the RFC 6464 level is the loop packet's level, V bit set.
    level_id = audio.parameters.ext_ids.audio_level
    assert level_id
    audio_views = [v for v in views if v.ssrc == audio.ssrc]
    assert len(audio_views) >= 50
    for view in audio_views:
        stamp = read_stamp(view.payload)
        assert stamp is not None
        assert view.extension(level_id) == bytes([0x80 | media.speech[stamp.index].level])
    assert len(_decode_audio("libopus", [v.payload for v in audio_views])) == len(audio_views)

    # Sender reports are truthful: the SR's NTP/RTP mapping predicts each frame's send time, up to
    # the shared pacer's tick (frames leave on the first 20 ms tick at or after their due time).
    report = next(p for d in reversed(rtcp) for p in parse_compound(d) if isinstance(p, SenderReport) and p.ssrc == video.ssrc)
    sr_unix = report.ntp_timestamp / 2**32 - NTP_EPOCH_OFFSET
    # (median: a busy machine delays single sends, never the media clock).
    offsets = []
    for view in (v for v in views if v.ssrc == video.ssrc and v.marker):
        stamp = read_stamp(view.payload)
        delta = ((view.timestamp - report.rtp_timestamp + 2**31) % 2**32) - 2**31
        offsets.append(stamp.send_us / 1e6 - (sr_unix + delta / 90000))
    assert -0.005 < sorted(offsets)[len(offsets) // 2] < 0.045
