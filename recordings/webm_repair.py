"""Reading WebM files the writer left, finalised or not, and repairing the unfinalised ones.

A file a crashed (``kill -9``) or failed writer left is its head (EBML header, Segment of unknown
size, reserved room, Info, Tracks), complete clusters and possibly one partial cluster at the end
(see :mod:`recordings.webm`). :func:`repair` walks the clusters in order, validating each one
completely (every child element inside it, every SimpleBlock on a known track, no lacing), cuts
the file at the end of the last good cluster and finalises it with the writer's own
:func:`recordings.webm.finalise`, so a repaired file is laid out exactly like a closed one.

:func:`read_frames` walks the same way and yields the blocks of the good clusters only: what
repair would keep. Files are read cluster by cluster, never whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from . import ebml
from .errors import RecordingFormatError
from .webm import ClusterRef, DurationTracker, Frame, Layout, TrackSpec, WebmSummary, cue_of, finalise

__all__ = ["Frame", "read_frames", "repair", "summarize", "track_specs"]

#: Top-level elements skipped (kept) between clusters; anything else ends the walk.
_SKIPPED = frozenset({ebml.CUES, ebml.VOID, ebml.TAGS})
#: Elements allowed in the room before Info/Tracks, and in the head besides them.
_HEAD_EXTRAS = frozenset({ebml.SEEK_HEAD, ebml.VOID, ebml.TAGS, ebml.CRC32})
#: Elements at the start of the Segment making up the room finalising writes the SeekHead into.
_ROOM = frozenset({ebml.SEEK_HEAD, ebml.VOID})
_CODECS: dict[str, tuple[Literal["audio", "video"], Literal["VP8", "OPUS"]]] = {
    "V_VP8": ("video", "VP8"),
    "A_OPUS": ("audio", "OPUS"),
}


@dataclass(frozen=True)
class Head:
    """What precedes the clusters: finalising layout, tracks, and where the Segment ends."""

    layout: Layout
    tracks: list[TrackSpec]
    #: Offset just past the Segment when its size is known (a finalised file), else None.
    segment_end: int | None


@dataclass(frozen=True)
class Cluster:
    header: ebml.ElementHeader
    frames: list[Frame]


class _Reader:
    """Random access to a file, by offset."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.size = os.fstat(file.fileno()).st_size

    def read(self, offset: int, length: int) -> bytes:
        self._file.seek(offset)
        return self._file.read(length)

    def header(self, offset: int, limit: int) -> ebml.ElementHeader:
        """The element header at ``offset``; ValueError if truncated before ``limit``."""
        return ebml.read_element_header(self.read(offset, min(ebml.MAX_HEADER_LENGTH, limit - offset)), 0)

    def element(self, offset: int, limit: int) -> tuple[ebml.ElementHeader, bytes]:
        """An element of known size ending before ``limit``, with its payload; ValueError if not."""
        local = self.header(offset, limit)
        if local.size is None:
            raise ValueError(f"element 0x{local.id:X} at {offset} has an unknown size")
        header = ebml.ElementHeader(local.id, local.size, local.header_length, offset)
        if header.end > limit:
            raise ValueError(f"element 0x{header.id:X} at {offset} is truncated (ends at {header.end}, "
                             f"data ends at {limit})")
        return header, self.read(header.data_start, local.size)


# -- the head ---------------------------------------------------------------------------------


def _read_head(reader: _Reader) -> Head:
    try:
        return _parse_head(reader)
    except ValueError as exc:
        if isinstance(exc, RecordingFormatError):
            raise
        raise RecordingFormatError(f"not a readable WebM file: {exc}") from None


def _parse_head(reader: _Reader) -> Head:
    if reader.size == 0:
        raise RecordingFormatError("the file is empty")
    header, payload = reader.element(0, reader.size)
    if header.id != ebml.EBML:
        raise RecordingFormatError(f"no EBML header (first element 0x{header.id:X})")
    doc_type = next((ebml.read_string(p) for h, p in ebml.children(payload, 0, len(payload)) if h.id == ebml.DOC_TYPE),
                    "matroska")
    if doc_type != "webm":
        raise RecordingFormatError(f"DocType {doc_type!r} is not 'webm'")
    segment = reader.header(header.end, reader.size)
    if segment.id != ebml.SEGMENT:
        raise RecordingFormatError(f"no Segment after the EBML header (element 0x{segment.id:X})")
    if segment.header_length != 12:
        raise RecordingFormatError(f"the Segment size is {segment.header_length - 4} bytes, not 8: cannot be patched")
    data_start = header.end + segment.header_length
    segment_end = None if segment.size is None else data_start + segment.size
    limit = reader.size if segment_end is None else min(segment_end, reader.size)
    room = -1
    info: tuple[int, int, int] | None = None
    tracks: tuple[int, list[TrackSpec]] | None = None
    offset = data_start
    while info is None or tracks is None:
        if offset >= limit:
            raise RecordingFormatError(f"the head ends at {offset} without {'Info' if info is None else 'Tracks'}")
        child, body = reader.element(offset, limit)
        if child.id not in _ROOM and room < 0:
            room = offset - data_start
        if child.id == ebml.INFO:
            info = (offset - data_start, *_parse_info(body, child.data_start))
        elif child.id == ebml.TRACKS:
            tracks = (offset - data_start, _parse_tracks(body))
        elif child.id not in _HEAD_EXTRAS:
            raise RecordingFormatError(f"unexpected element 0x{child.id:X} at {offset} before Info and Tracks")
        offset = child.end
    layout = Layout(segment_size_pos=header.end + 4, data_start=data_start, room=room, info_position=info[0],
                    tracks_position=tracks[0], duration_pos=info[1], duration_width=info[2], clusters_start=offset)
    return Head(layout, tracks[1], segment_end)


def _parse_info(body: bytes, body_offset: int) -> tuple[int, int]:
    """(offset of the Duration payload or 0, its width); checks the 1 ms TimestampScale."""
    scale = 1_000_000
    duration = (0, 0)
    for child, payload in ebml.children(body, 0, len(body)):
        if child.id == ebml.TIMESTAMP_SCALE:
            scale = ebml.read_uint(payload)
        elif child.id == ebml.DURATION and len(payload) in (4, 8):
            duration = (body_offset + child.data_start, len(payload))
    if scale != 1_000_000:
        raise RecordingFormatError(f"TimestampScale {scale} ns is not 1 ms")
    return duration


def _parse_tracks(body: bytes) -> list[TrackSpec]:
    specs: list[TrackSpec] = []
    for entry, entry_body in ebml.children(body, 0, len(body)):
        if entry.id != ebml.TRACK_ENTRY:
            continue
        fields = {child.id: payload for child, payload in ebml.children(entry_body, 0, len(entry_body))}
        number = ebml.read_uint(fields.get(ebml.TRACK_NUMBER, b""))
        codec_id = ebml.read_string(fields.get(ebml.CODEC_ID, b""))
        if codec_id not in _CODECS:
            raise RecordingFormatError(f"track {number}: codec {codec_id!r} is not V_VP8 or A_OPUS")
        kind, codec = _CODECS[codec_id]
        video = _fields(fields.get(ebml.VIDEO, b""))
        audio = _fields(fields.get(ebml.AUDIO, b""))
        specs.append(TrackSpec(
            number=number, kind=kind, codec=codec,
            width=ebml.read_uint(video.get(ebml.PIXEL_WIDTH, b"")),
            height=ebml.read_uint(video.get(ebml.PIXEL_HEIGHT, b"")),
            channels=ebml.read_uint(audio.get(ebml.CHANNELS, b"\x01")) if kind == "audio" else 2,
            name=ebml.read_string(fields.get(ebml.NAME, b"")),
        ))
    if not specs:
        raise RecordingFormatError("the file has no tracks")
    return specs


def _fields(body: bytes | memoryview) -> dict[int, memoryview]:
    return {child.id: payload for child, payload in ebml.children(body, 0, len(body))}


# -- the clusters -----------------------------------------------------------------------------


def _parse_cluster(header: ebml.ElementHeader, body: bytes, tracks: frozenset[int]) -> list[Frame]:
    """The blocks of a complete cluster; ValueError if anything in it is malformed."""
    base: int | None = None
    frames: list[Frame] = []
    for child, payload in ebml.children(body, 0, len(body)):
        if child.id == ebml.TIMESTAMP:
            base = ebml.read_uint(payload)
        elif child.id == ebml.SIMPLE_BLOCK:
            if base is None:
                raise ValueError(f"cluster at {header.offset}: a SimpleBlock before the Timestamp")
            track, length = ebml.read_vint(payload, 0)
            if track not in tracks:
                raise ValueError(f"cluster at {header.offset}: a SimpleBlock of unknown track {track}")
            if len(payload) < length + 4:
                raise ValueError(f"cluster at {header.offset}: a SimpleBlock of {len(payload)} bytes")
            relative = int.from_bytes(payload[length:length + 2], "big", signed=True)
            flags = payload[length + 2]
            if flags & 0x06:
                raise ValueError(f"cluster at {header.offset}: a laced SimpleBlock")
            frames.append(Frame(track, base + relative, bool(flags & 0x80), bytes(payload[length + 3:])))
    return frames


def _walk(reader: _Reader, head: Head) -> Iterator[Cluster | ebml.ElementHeader]:
    """Top-level elements after the head: complete, valid Clusters (with their frames) and the
    skipped Cues/Void/Tags headers; stops at the end of the Segment or of the file, or before
    the first truncated or malformed element."""
    limit = reader.size if head.segment_end is None else min(head.segment_end, reader.size)
    tracks = frozenset(spec.number for spec in head.tracks)
    offset = head.layout.clusters_start
    while offset < limit:
        item: Cluster | ebml.ElementHeader
        try:
            header, body = reader.element(offset, limit)
            if header.id == ebml.CLUSTER:
                item = Cluster(header, _parse_cluster(header, body, tracks))
            elif header.id in _SKIPPED:
                item = header
            else:
                return
        except ValueError:
            return
        yield item
        offset = header.end


@dataclass
class _Scan:
    """What a walk found: the cluster index, counts, duration and where the good part ends."""

    refs: list[ClusterRef]
    frames: dict[int, int]
    duration: DurationTracker
    clusters_end: int
    walk_end: int
    cues: int


def _scan(reader: _Reader, head: Head) -> _Scan:
    video = frozenset(spec.number for spec in head.tracks if spec.kind == "video")
    duration = DurationTracker(spec.number for spec in head.tracks if spec.kind == "audio")
    frames = {spec.number: 0 for spec in head.tracks}
    refs: list[ClusterRef] = []
    clusters_end = walk_end = head.layout.clusters_start
    cues = -1
    for item in _walk(reader, head):
        if isinstance(item, Cluster):
            refs.append(cue_of(item.frames, item.header.offset - head.layout.data_start, video))
            for frame in item.frames:
                frames[frame.track] += 1
                duration.add(frame.track, frame.timestamp_ms, frame.data)
            clusters_end = walk_end = item.header.end
            cues = -1  # Cues before a cluster are stale
        else:
            walk_end = item.end
            if item.id == ebml.CUES:
                cues = _count_cue_points(reader, item)
    return _Scan(refs, frames, duration, clusters_end, walk_end, cues)


def _count_cue_points(reader: _Reader, header: ebml.ElementHeader) -> int:
    assert header.size is not None
    body = reader.read(header.data_start, header.size)
    return sum(1 for child, _ in ebml.children(body, 0, len(body)) if child.id == ebml.CUE_POINT)


# -- public API -------------------------------------------------------------------------------


def read_frames(path: Path) -> Iterator[Frame]:
    """Every block of the file's complete clusters, in file order (finalised or not; stops at a
    truncated or malformed cluster). RecordingFormatError when the head is unreadable."""
    with open(path, "rb") as file:
        reader = _Reader(file)
        head = _read_head(reader)
        for item in _walk(reader, head):
            if isinstance(item, Cluster):
                yield from item.frames


def track_specs(path: Path) -> list[TrackSpec]:
    """The tracks of a file, as the writer was given them (a 0 picture size reads as the nominal one)."""
    with open(path, "rb") as file:
        return _read_head(_Reader(file)).tracks


def summarize(path: Path) -> WebmSummary:
    """What the file holds, without changing it (``cues``: CuePoints of the last Cues element
    after the clusters, 0 when unfinalised)."""
    with open(path, "rb") as file:
        reader = _Reader(file)
        scan = _scan(reader, _read_head(reader))
        return WebmSummary(Path(path), round(scan.duration.end_ms()), reader.size, scan.frames, len(scan.refs),
                           max(scan.cues, 0))


def repair(path: Path) -> WebmSummary:
    """Finalise a file a crashed or failed writer left: cut it after its last complete cluster,
    then append Cues and patch Duration, SeekHead and Segment size like WebmWriter.close().
    A finalised file (known Segment size matching the file, Cues after the clusters, or no
    cluster at all) is left unchanged. RecordingFormatError when the head is unreadable."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "rb") as file:
            reader = _Reader(file)
            head = _read_head(reader)
            scan = _scan(reader, head)
        duration = scan.duration.end_ms()
        finalised = (head.segment_end == reader.size and scan.walk_end == reader.size
                     and (scan.cues >= 0 or not scan.refs))
        if finalised:
            return WebmSummary(path, round(duration), reader.size, scan.frames, len(scan.refs), max(scan.cues, 0))
        os.ftruncate(fd, scan.clusters_end)
        size, cues = finalise(fd, head.layout, scan.refs, scan.clusters_end, duration)
        return WebmSummary(path, round(duration), size, scan.frames, len(scan.refs), cues,
                           truncated_bytes=reader.size - scan.clusters_end)
    finally:
        os.close(fd)
