"""recordings.webm_repair: files cut at every byte of their last cluster (a kill -9 in the middle of
a write) and at random places are repaired to their last complete cluster, which PyAV decodes."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import av
import pytest
from test_webm import AUDIO, VIDEO, clusters, decode, media_frames, write

from bots.media_files import PreEncodedMedia
from recordings import ebml
from recordings.errors import RecordingFormatError
from recordings.webm import Frame
from recordings.webm_repair import read_frames, repair, summarize, track_specs


@pytest.fixture
def crashed(tmp_path: Path, small_media: PreEncodedMedia) -> tuple[Path, list[Frame]]:
    """A file whose writer was killed: 4 s of audio and video flushed at irregular points, the
    last cluster small (audio only), then frames buffered but never flushed. Returns the file and
    the frames that reached it."""
    path = tmp_path / "crashed.webm"
    frames = media_frames(small_media, audio=200, video=60)
    writer = write(path, [AUDIO, VIDEO], frames, flush_every=17)
    writer.flush()
    tail = [Frame(1, 4000 + 20 * i, True, small_media.speech[i].data) for i in range(3)]
    for frame in tail:
        writer.add_frame(frame.track, frame.timestamp_ms, frame.data, keyframe=True)
    writer.flush()  # the small last cluster
    writer.add_frame(1, 4060, small_media.speech[3].data, keyframe=True)  # lost with the process
    writer.abort()
    return path, frames + tail


def cut(source: Path, size: int, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[:size])
    return target


def test_repair_at_every_byte_of_the_last_cluster(crashed: tuple[Path, list[Frame]], tmp_path: Path) -> None:
    path, written = crashed
    *_, (last_offset, _, last_blocks) = clusters(path)
    assert len(last_blocks) == 3
    kept = written[:-3]
    size = path.stat().st_size
    decoded_sizes = {last_offset, last_offset + 1, (last_offset + size) // 2, size - 1}
    for end in range(last_offset, size):
        target = cut(path, end, tmp_path / "cut.webm")
        summary = repair(target)
        assert summary.truncated_bytes == end - last_offset
        assert summary.frames == {1: 200, 2: 60} and summary.duration_ms == 4000
        assert list(read_frames(target)) == kept, end
        if end in decoded_sizes:
            assert decode(target) == {"audio": [f.timestamp_ms for f in kept if f.track == 1],
                                      "video": [f.timestamp_ms for f in kept if f.track == 2]}
            with av.open(str(target)) as container:
                assert container.duration == 4_000_000
        target.unlink()
    # Uncut, nothing is lost but the unflushed frame.
    summary = repair(path)
    assert summary.truncated_bytes == 0 and list(read_frames(path)) == written and summary.duration_ms == 4060


def test_repair_at_random_places(crashed: tuple[Path, list[Frame]], tmp_path: Path) -> None:
    path, written = crashed
    ends = [offset for offset, _, _ in clusters(path)][1:] + [path.stat().st_size]
    counts = [len(blocks) for _, _, blocks in clusters(path)]
    head_end = next(clusters(path))[0]
    rng = random.Random(7)
    for size in [head_end, *rng.sample(range(head_end, path.stat().st_size), 25)]:
        target = cut(path, size, tmp_path / "cut.webm")
        complete = sum(count for end, count in zip(ends, counts, strict=True) if end <= size)
        before = list(read_frames(target))  # the unfinalised file reads the same
        summary = repair(target)
        assert before == list(read_frames(target)) == written[:complete], size
        assert sum(summary.frames.values()) == complete
        assert summary.size == target.stat().st_size and summarize(target) == replace(summary, truncated_bytes=0)
        target.unlink()


def test_repair_twice_is_repair_once(crashed: tuple[Path, list[Frame]], tmp_path: Path) -> None:
    path, _ = crashed
    target = cut(path, path.stat().st_size - 5, tmp_path / "twice.webm")
    first = repair(target)
    data = target.read_bytes()
    again = repair(target)
    assert target.read_bytes() == data and again == replace(first, truncated_bytes=0)
    assert first.cues == again.cues == 2 and first.clusters == again.clusters


def test_a_closed_file_is_left_alone(tmp_path: Path, small_media: PreEncodedMedia) -> None:
    path = tmp_path / "closed.webm"
    closed = write(path, [AUDIO, VIDEO], media_frames(small_media, audio=50, video=15), flush_every=9).close()
    data = path.read_bytes()
    assert repair(path) == closed and path.read_bytes() == data
    assert summarize(path) == closed
    # A crash in close() after the Cues, before the Segment size: repair finishes it identically.
    unfinished = bytearray(data)
    segment_size = ebml.read_element_header(data, 0).end + 4
    unfinished[segment_size:segment_size + 8] = ebml.UNKNOWN_SIZE
    (tmp_path / "unfinished.webm").write_bytes(bytes(unfinished))
    summary = repair(tmp_path / "unfinished.webm")
    assert (tmp_path / "unfinished.webm").read_bytes() == data and summary.frames == closed.frames


def test_a_file_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.webm"
    write(path, [VIDEO], []).abort()
    summary = repair(path)
    assert (summary.frames, summary.clusters, summary.cues, summary.duration_ms) == ({2: 0}, 0, 0, 0)
    data = path.read_bytes()
    assert repair(path).size == len(data) and path.read_bytes() == data
    assert track_specs(path) == [VIDEO]


@pytest.mark.parametrize("content", [
    b"",
    b"garbage, not a WebM file" * 10,
    b"\x1a\x45\xdf\xa3\x84\x42\x82\x81m",  # DocType "m"
])
def test_unreadable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.webm"
    path.write_bytes(content)
    for call in (repair, summarize, track_specs, lambda p: list(read_frames(p))):
        with pytest.raises(RecordingFormatError):
            call(path)
    assert path.read_bytes() == content


def test_a_truncated_head(crashed: tuple[Path, list[Frame]], tmp_path: Path) -> None:
    path, _ = crashed
    data = path.read_bytes()
    head_end = next(clusters(path))[0]
    ebml_end = ebml.read_element_header(data, 0).end
    data_start = ebml_end + 12  # the Segment header
    info_at = data_start + 128  # the SeekHead room
    tracks_at = ebml.read_element_header(data, info_at).end
    messages: dict[str, list[int]] = {}
    for size in range(head_end):
        target = cut(path, size, tmp_path / "head.webm")
        with pytest.raises(RecordingFormatError) as info:
            repair(target)
        messages.setdefault(str(info.value), []).append(size)
        assert target.stat().st_size == size
    assert messages.pop("the file is empty") == [0]
    assert messages.pop(f"the head ends at {data_start} without Info") == [data_start]
    assert messages.pop(f"the head ends at {info_at} without Info") == [info_at]
    assert messages.pop(f"the head ends at {tracks_at} without Tracks") == [tracks_at]
    assert all(message.startswith("not a readable WebM file: ") and "truncated" in message for message in messages)
    assert sum(map(len, messages.values())) == head_end - 4
