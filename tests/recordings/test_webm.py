"""recordings.webm and recordings.ebml: files written from real VP8 and Opus frames, read back and
decoded with PyAV (FFmpeg's Matroska demuxer), the cluster rules, and write errors."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av
import pytest

from bots.media_files import PreEncodedMedia
from recordings import ebml, webm
from recordings.errors import RecordingError, RecordingWriteError
from recordings.webm import TrackSpec, WebmWriter
from recordings.webm_repair import Frame, read_frames, repair, summarize, track_specs

AUDIO = TrackSpec(1, "audio", "OPUS", channels=1, name="Speech")
VIDEO = TrackSpec(2, "video", "VP8", width=320, height=180, name="Caméra")
FPS = 15


def video_ms(index: int) -> int:
    return index * 1000 // FPS


def media_frames(media: PreEncodedMedia, *, audio: int = 0, video: int = 0) -> list[Frame]:
    """``audio`` 20 ms Opus packets on track 1 and ``video`` VP8 frames (15 fps, the 2 s loop
    repeated: a keyframe every 30 frames) on track 2, in time order."""
    frames = [Frame(AUDIO.number, i * 20, True, media.speech[i % len(media.speech)].data) for i in range(audio)]
    frames += [Frame(VIDEO.number, video_ms(i), media.keyframes[i % len(media.video)], media.video[i % len(media.video)])
               for i in range(video)]
    return sorted(frames, key=lambda f: f.timestamp_ms)


def write(path: Path, tracks: list[TrackSpec], frames: list[Frame], *, flush_every: int = 0,
          cluster_ms: int = 500) -> WebmWriter:
    writer = WebmWriter(path, tracks, cluster_ms=cluster_ms, title="Cabinet session",
                        date_utc=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    for index, frame in enumerate(frames, 1):
        writer.add_frame(frame.track, frame.timestamp_ms, frame.data, keyframe=frame.keyframe)
        if flush_every and index % flush_every == 0:
            writer.flush()
    return writer


def decode(path: Path) -> dict[str, list[int]]:
    """Per stream type, the pts (ms) of every frame PyAV decodes (packets demuxed in file order)."""
    out: dict[str, list[int]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            assert packet.stream.time_base == Fraction(1, 1000)
            for _ in packet.decode():
                out.setdefault(packet.stream.type, []).append(int(packet.pts))
    return out


def clusters(path: Path) -> Iterator[tuple[int, int, list[tuple[int, int, int]]]]:
    """(offset, Timestamp, [(track, relative time, flags)]) of each top-level Cluster, parsed here
    with the EBML primitives only (independently of webm_repair)."""
    data = path.read_bytes()
    segment = ebml.read_element_header(data, ebml.read_element_header(data, 0).end)
    offset = segment.data_start
    while offset < len(data):
        header = ebml.read_element_header(data, offset)
        if header.id == ebml.CLUSTER:
            base, blocks = -1, []
            for child, payload in ebml.children(data, header.data_start, header.end):
                if child.id == ebml.TIMESTAMP:
                    base = ebml.read_uint(payload)
                elif child.id == ebml.SIMPLE_BLOCK:
                    blocks.append((payload[0] & 0x7F, int.from_bytes(payload[1:3], "big", signed=True), payload[3]))
            yield header.offset, base, blocks
        offset = header.end


# -- ebml -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 126, 127, 128, 16382, 16383, 2**21, 2**56 - 2])
def test_vint_sizes_round_trip(size: int) -> None:
    encoded = ebml.encode_size(size)
    assert ebml.read_vint(encoded, 0) == (size, len(encoded))
    assert not ebml.is_unknown(size, len(encoded))
    assert ebml.read_vint(ebml.encode_size(size, 8), 0) == (size, 8)


def test_ebml_encoding_details() -> None:
    assert ebml.encode_size(126) == b"\xfe" and ebml.encode_size(127) == b"\x40\x7f"
    assert ebml.encode_id(ebml.SEGMENT) == b"\x18\x53\x80\x67" and ebml.encode_id(ebml.VOID) == b"\xec"
    value, length = ebml.read_vint(ebml.UNKNOWN_SIZE, 0)
    assert ebml.is_unknown(value, length) and length == 8
    header = ebml.read_element_header(ebml.encode_id(ebml.SEGMENT) + ebml.UNKNOWN_SIZE, 0)
    assert (header.id, header.size, header.header_length) == (ebml.SEGMENT, None, 12)
    for total in (2, 3, 128, 129, 130, 20000):
        void = ebml.void(total)
        assert len(void) == total and ebml.read_element_header(void, 0).end == total
    assert ebml.uint(ebml.TRACK_NUMBER, 0) == b"\xd7\x81\x00"
    assert ebml.sint(ebml.DATE_UTC, -1) == b"\x44\x61\x81\xff"
    assert ebml.read_float(ebml.float64(ebml.DURATION, 1234.5)[3:]) == 1234.5
    with pytest.raises(ValueError, match="out of range"):
        ebml.encode_size(2**56 - 1)
    with pytest.raises(ValueError, match="does not fit a 1-byte vint"):
        ebml.encode_size(127, 1)
    with pytest.raises(ValueError, match="cannot be 1 bytes"):
        ebml.void(1)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "truncated \\(no id\\)"),
    (b"\x1a\x45", "truncated \\(id\\)"),
    (b"\x1a\x45\xdf\xa3", "size: EBML vint at 4 is truncated \\(no byte\\)"),
    (b"\x1a\x45\xdf\xa3\x01\x00", "size: EBML vint at 4 is truncated \\(2 of 8 bytes\\)"),
    (b"\x1a\x45\xdf\xa3\x00", "size: EBML vint at 4 is invalid"),
    (b"\x08\x00\x00\x00\x00\x81", "invalid id"),
])
def test_ebml_header_reader_rejects(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ebml.read_element_header(data, 0)


def test_children_reject_overrun() -> None:
    parent = ebml.master(ebml.INFO, ebml.uint(ebml.TIMESTAMP_SCALE, 1_000_000))
    with pytest.raises(ValueError, match="runs past its parent"):
        ebml.children(parent[:-1], 5, len(parent) - 1)


# -- decoding with PyAV -----------------------------------------------------------------------


def test_vp8_file_decodes_and_seeks(tmp_path: Path, small_media: PreEncodedMedia) -> None:
    path = tmp_path / "video.webm"
    frames = media_frames(small_media, video=90)  # 6 s, keyframes at 0, 2 and 4 s
    summary = write(path, [VIDEO], frames, flush_every=7).close()
    assert summary.frames == {2: 90} and summary.clusters >= 12 and summary.cues == 3
    assert summary.duration_ms == video_ms(89) + video_ms(89) - video_ms(88)
    assert summary.size == path.stat().st_size
    assert decode(path) == {"video": [f.timestamp_ms for f in frames]}
    assert list(read_frames(path)) == frames
    assert track_specs(path) == [VIDEO]
    with av.open(str(path)) as container:
        assert container.duration == summary.duration_ms * 1000
        assert container.metadata.get("title") == "Cabinet session"
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.width, stream.codec_context.height) == ("vp8", 320, 180)
        container.seek(3000, stream=stream)  # back to the keyframe at 2 s
        pts = [int(frame.pts) for packet in container.demux(stream) for frame in packet.decode()]
    assert pts == [video_ms(i) for i in range(30, 90)]


def test_opus_file_decodes_and_seeks(tmp_path: Path, small_media: PreEncodedMedia) -> None:
    path = tmp_path / "audio.webm"
    frames = media_frames(small_media, audio=150)
    summary = write(path, [AUDIO], frames, flush_every=11).close()
    assert summary.duration_ms == 3000 and summary.cues == summary.clusters >= 6
    assert decode(path) == {"audio": [i * 20 for i in range(150)]}
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert container.duration == 3_000_000
        assert (stream.codec_context.name, stream.codec_context.sample_rate, stream.codec_context.channels) == (
            "opus", 48000, 1)
        container.seek(1500, stream=stream)
        pts = [int(frame.pts) for packet in container.demux(stream) for frame in packet.decode()]
    assert 1000 <= pts[0] <= 1500 and pts == list(range(pts[0], 3000, 20))


def test_audio_and_video_interleave_and_decode(tmp_path: Path, small_media: PreEncodedMedia) -> None:
    path = tmp_path / "both.webm"
    frames = media_frames(small_media, audio=200, video=60)
    writer = WebmWriter(path, [AUDIO, VIDEO])
    # Audio arrives late (each track in order, the tracks not in step): the audio before a video
    # keyframe lands in the keyframe's cluster, sorted before it.
    audio = [f for f in frames if f.track == 1]
    video = [f for f in frames if f.track == 2]
    for index, frame in enumerate(video):
        writer.add_frame(2, frame.timestamp_ms, frame.data, keyframe=frame.keyframe)
        for item in audio[max(0, index - 1) * 10 // 3:index * 10 // 3]:
            writer.add_frame(1, item.timestamp_ms, item.data, keyframe=False)
        if index % 6 == 5:
            writer.flush()
    for item in audio[59 * 10 // 3:]:
        writer.add_frame(1, item.timestamp_ms, item.data, keyframe=False)
    summary = writer.close()
    assert summary.frames == {1: 200, 2: 60} and summary.duration_ms == 4000 and summary.cues == 2
    decoded = decode(path)
    assert decoded == {"audio": [f.timestamp_ms for f in audio], "video": [f.timestamp_ms for f in video]}
    for _, _, blocks in clusters(path):  # blocks sorted by time within each cluster
        assert [rel for _, rel, _ in blocks] == sorted(rel for _, rel, _ in blocks) and blocks[0][1] == 0
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["audio", "video"]
        assert container.streams.audio[0].metadata.get("title") == "Speech"
        assert container.streams.video[0].metadata.get("title") == "Caméra"


# -- cluster rules and validation -------------------------------------------------------------


def test_video_keyframe_starts_a_cluster(tmp_path: Path) -> None:
    path = tmp_path / "k.webm"
    writer = WebmWriter(path, [VIDEO], cluster_ms=10_000)
    for index in range(10):
        writer.add_frame(2, index * 100, b"v%d" % index, keyframe=index in (0, 5, 6))
    writer.close()
    layout = [(base, [(rel, flags) for _, rel, flags in blocks]) for _, base, blocks in clusters(path)]
    assert layout == [(0, [(0, 0x80), (100, 0), (200, 0), (300, 0), (400, 0)]), (500, [(0, 0x80)]),
                      (600, [(0, 0x80), (100, 0), (200, 0), (300, 0)])]
    assert summarize(path).cues == 3


def test_cluster_ms_and_int16_limits(tmp_path: Path) -> None:
    path = tmp_path / "a.webm"
    writer = WebmWriter(path, [AUDIO], cluster_ms=200)
    for index in range(50):
        writer.add_frame(1, index * 20, b"\xf8\xff", keyframe=False)  # keyframe flag forced for audio
    writer.close()
    layout = list(clusters(path))
    assert [base for _, base, _ in layout] == [0, 200, 400, 600, 800]
    assert all(len(blocks) == 10 and {flags for _, _, flags in blocks} == {0x80} for _, _, blocks in layout)

    path = tmp_path / "b.webm"
    writer = WebmWriter(path, [AUDIO, VIDEO], cluster_ms=100_000)
    for ts in (0, 20_000, 32_767, 40_000):
        writer.add_frame(1, ts, b"\xf8\xff", keyframe=True)
    writer.add_frame(2, 10_000, b"\x01", keyframe=False)
    writer.add_frame(2, 70_000, b"\x02", keyframe=False)
    summary = writer.close()
    assert [(base, blocks) for _, base, blocks in clusters(path)] == [
        (0, [(1, 0, 0x80), (1, 20_000, 0x80), (1, 32_767, 0x80)]),
        (10_000, [(2, 0, 0), (1, 30_000, 0x80)]),
        (70_000, [(2, 0, 0)]),
    ]
    assert summary.cues == 0 and summary.duration_ms == 70_000 + webm.MAX_VIDEO_FRAME_MS


def test_backwards_timestamp_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.webm"
    writer = WebmWriter(path, [AUDIO, VIDEO])
    writer.add_frame(1, 100, b"\xf8a", keyframe=True)
    writer.add_frame(2, 120, b"v", keyframe=True)
    writer.flush()
    before = path.read_bytes()
    with pytest.raises(ValueError, match="track 1: timestamp 99 ms is before the previous one \\(100 ms\\)"):
        writer.add_frame(1, 99, b"\xf8b", keyframe=True)
    writer.add_frame(2, 120, b"w", keyframe=False)  # an equal time is not backwards
    writer.add_frame(1, 100, b"\xf8c", keyframe=True)
    assert path.read_bytes() == before and writer.last_timestamp_ms == 120
    with pytest.raises(ValueError, match="no track 3"):
        writer.add_frame(3, 200, b"x", keyframe=True)
    with pytest.raises(ValueError, match="timestamp -1 ms is negative"):
        writer.add_frame(2, -1, b"x", keyframe=True)
    with pytest.raises(ValueError, match="empty frame at 200 ms"):
        writer.add_frame(2, 200, b"", keyframe=True)
    assert path.read_bytes() == before
    summary = writer.close()
    assert summary.frames == {1: 2, 2: 2}
    assert writer.close() is summary  # idempotent
    with pytest.raises(RecordingError, match="closed"):
        writer.add_frame(1, 500, b"\xf8", keyframe=True)


def test_constructor_checks(tmp_path: Path) -> None:
    path = tmp_path / "c.webm"
    path.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        WebmWriter(path, [AUDIO])
    assert path.read_bytes() == b"mine"
    for tracks, message in (([], "at least one track"), ([AUDIO, AUDIO], "not unique")):
        with pytest.raises(ValueError, match=message):
            WebmWriter(tmp_path / "d.webm", tracks)
    with pytest.raises(ValueError, match="timezone-aware"):
        WebmWriter(tmp_path / "d.webm", [AUDIO], date_utc=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="'OPUS' is not a 'video' codec"):
        TrackSpec(1, "video", "OPUS")
    with pytest.raises(ValueError, match="6 Opus channels"):
        TrackSpec(1, "audio", "OPUS", channels=6)
    assert not (tmp_path / "d.webm").exists()


def test_an_unfinalised_file_is_a_live_stream(tmp_path: Path, small_media: PreEncodedMedia) -> None:
    """After the constructor the head is readable; after the first flush FFmpeg demuxes and decodes
    the file as it is (unknown Segment size, no Cues, Duration 0). A video track without a size is
    written at the nominal size."""
    path = tmp_path / "h.webm"
    writer = WebmWriter(path, [TrackSpec(1, "video", "VP8")])
    assert writer.bytes_written == path.stat().st_size and writer.last_timestamp_ms == -1
    assert track_specs(path) == [TrackSpec(1, "video", "VP8", webm.NOMINAL_WIDTH, webm.NOMINAL_HEIGHT)]
    assert list(read_frames(path)) == []
    for index in range(3):
        writer.add_frame(1, video_ms(index), small_media.video[index], keyframe=small_media.keyframes[index])
    writer.flush()
    assert writer.bytes_written == path.stat().st_size and writer.last_timestamp_ms == video_ms(2)
    with av.open(str(path)) as container:
        assert container.duration is None
        assert container.streams.video[0].codec_context.width == webm.NOMINAL_WIDTH
        assert [frame.width for frame in container.decode(video=0)] == [320, 320, 320]
    writer.abort()
    assert [frame.timestamp_ms for frame in read_frames(path)] == [0, 66, 133]


# -- write errors -----------------------------------------------------------------------------


def failing_write(monkeypatch: pytest.MonkeyPatch, writer: WebmWriter,
                  fail: Callable[[int, bytes], int]) -> None:
    """Make os.write on the writer's file call ``fail(fd, data)`` (other fds write normally)."""
    real = os.write
    fd = writer._fd

    def write(target: int, data: bytes) -> int:
        return fail(target, data) if target == fd else real(target, data)

    monkeypatch.setattr(webm.os, "write", write)


def enospc(fd: int, data: bytes) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def torn(fd: int, data: bytes) -> int:
    """A short write: half the cluster reaches the file."""
    return os.pwrite(fd, data[:len(data) // 2], os.lseek(fd, 0, os.SEEK_CUR))


@pytest.mark.parametrize("fail", [enospc, torn])
def test_write_error_truncates_to_the_last_complete_cluster(tmp_path: Path, small_media: PreEncodedMedia,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            fail: Callable[[int, bytes], int]) -> None:
    path = tmp_path / "e.webm"
    frames = media_frames(small_media, audio=100, video=30)
    writer = write(path, [AUDIO, VIDEO], frames[:60], flush_every=20)
    kept = writer.bytes_written
    assert kept == path.stat().st_size
    failing_write(monkeypatch, writer, fail)
    with pytest.raises(RecordingWriteError, match="e.webm: writing a cluster failed") as info:
        for frame in frames[60:]:
            writer.add_frame(frame.track, frame.timestamp_ms, frame.data, keyframe=frame.keyframe)
        writer.flush()
    assert info.value.errno == errno.ENOSPC and isinstance(info.value.__cause__, OSError)
    assert writer.failed and path.stat().st_size == kept == writer.bytes_written
    with pytest.raises(RecordingWriteError, match="failed earlier"):
        writer.add_frame(1, 10_000, b"\xf8", keyframe=True)
    with pytest.raises(RecordingWriteError, match="failed earlier"):
        writer.flush()
    assert list(read_frames(path)) == frames[:60]
    monkeypatch.undo()
    summary = repair(path)
    assert summary.truncated_bytes == 0 and sum(summary.frames.values()) == 60
    assert decode(path) == {kind: [f.timestamp_ms for f in frames[:60] if f.track == number]
                            for kind, number in (("audio", 1), ("video", 2))}


def test_close_of_a_failed_writer_finalises_what_is_there(tmp_path: Path, small_media: PreEncodedMedia,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.webm"
    frames = media_frames(small_media, audio=50)
    writer = write(path, [AUDIO], frames[:30], flush_every=10)
    failing_write(monkeypatch, writer, enospc)
    writer.add_frame(1, frames[30].timestamp_ms, frames[30].data, keyframe=True)
    with pytest.raises(RecordingWriteError):
        writer.close()  # the flush fails; the three earlier clusters are finalised anyway
    assert writer.close().frames == {1: 30}
    assert decode(path) == {"audio": [f.timestamp_ms for f in frames[:30]]}
    assert repair(path).truncated_bytes == 0


def test_failing_finalise_leaves_a_repairable_file(tmp_path: Path, small_media: PreEncodedMedia,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.webm"
    frames = media_frames(small_media, audio=40)
    writer = write(path, [AUDIO], frames, flush_every=10)

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(webm.os, "fsync", fsync)
    with pytest.raises(RecordingWriteError, match="finalising failed: Input/output error") as info:
        writer.close()
    assert info.value.errno == errno.EIO
    monkeypatch.undo()
    summary = repair(path)
    assert summary.frames == {1: 40} and summary.cues == 4 and summary.truncated_bytes > 0  # the old Cues
    assert decode(path) == {"audio": [f.timestamp_ms for f in frames]}


def test_failing_header_write_removes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.write
    monkeypatch.setattr(webm.os, "write", lambda fd, data: real(fd, data[:10]))
    with pytest.raises(RecordingWriteError, match="writing the header failed: no space left on device \\(a short write") as info:
        WebmWriter(tmp_path / "h.webm", [AUDIO])
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / "h.webm").exists()
