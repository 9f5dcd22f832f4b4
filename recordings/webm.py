"""A crash-safe WebM writer for already-encoded VP8 and Opus frames (no codec, no FFmpeg).

File layout (offsets grow downwards; the first three blocks are written and flushed by the
constructor, so the file is a demuxable live stream from its creation on)::

    EBML header        DocType "webm", DocTypeVersion 4, DocTypeReadVersion 2
    Segment header     id + 8-byte size vint, "unknown" (0x01FFFFFFFFFFFFFF) until finalised
      Void             SEEK_HEAD_ROOM bytes reserved for the SeekHead (Info, Tracks, Cues)
      Info             TimestampScale 1 ms, MuxingApp, WritingApp, Title, DateUTC and, last,
                       Duration: an 8-byte float 0.0 (players read 0 as "unknown")
      Tracks           one TrackEntry per TrackSpec (V_VP8 / A_OPUS with its OpusHead)
      Cluster ...      known size; Timestamp (smallest block time), then SimpleBlocks sorted by
                       time (stable: tracks interleave); each cluster is ONE os.write
      Cues             written by close() / repair: one CuePoint per cluster starting with a
                       video keyframe (every cluster of an audio-only file)

Why it is crash safe: nothing already in the file is ever rewritten while recording; a cluster
reaches the file with a single write of a complete element, so after ``kill -9`` the file is the
head plus complete clusters plus, at worst, one partial cluster at the end (a torn write), which
:func:`recordings.webm_repair.repair` cuts off. The recorder flushes every <= 500 ms, which bounds
the loss. Finalising (:func:`finalise`, shared by close() and repair) only appends the Cues and
patches fixed-width fields in place (Duration, the SeekHead inside the reserved Void, the 8-byte
Segment size), so no byte moves; the Segment size is patched last, after an fsync, and is the
mark of a finalised file: a crash in the middle of finalising leaves a file repair finishes.

On a write error (disk full, I/O error, short write) the writer cuts the file back to the end of
its last complete cluster (``os.ftruncate``), marks itself failed and raises
:class:`recordings.errors.RecordingWriteError`; close() then tries to finalise what is there.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from . import ebml
from .errors import RecordingError, RecordingWriteError

#: Bytes reserved after the Segment header for the SeekHead (68 bytes with three entries) + Void.
SEEK_HEAD_ROOM = 128
#: Picture size written for a video track whose TrackSpec has width/height 0 (size unknown when
#: the file is created): players take the real size from the VP8 keyframes and cope with changes.
NOMINAL_WIDTH, NOMINAL_HEIGHT = 640, 480
#: Opus tracks: SeekPreRoll (ns) the Matroska specification recommends, and the sampling rate.
OPUS_SEEK_PRE_ROLL_NS = 80_000_000
OPUS_SAMPLE_RATE = 48_000
#: Longest duration assumed for the last frame of a video track (its interval to the previous frame,
#: capped: a long gap is a pause or a frozen stream, not a long frame).
MAX_VIDEO_FRAME_MS = 200
MUXING_APP = "Cabinet recordings.webm"
#: Track numbers are written as one-byte vints in every SimpleBlock.
MAX_TRACK_NUMBER = 126

_MATROSKA_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)
_BLOCK_HEAD = struct.Struct(">BhB")  # one-byte track number, relative timestamp, flags
_INT16_MAX = 32767
_KEYFRAME_FLAG = 0x80
_CODEC_IDS = {"VP8": "V_VP8", "OPUS": "A_OPUS"}
_CODEC_KINDS = {"VP8": "video", "OPUS": "audio"}


@dataclass(frozen=True)
class TrackSpec:
    """One track of a WebM file. A video track with width/height 0 is written as
    NOMINAL_WIDTH x NOMINAL_HEIGHT."""

    number: int
    kind: Literal["audio", "video"]
    codec: Literal["VP8", "OPUS"]
    width: int = 0
    height: int = 0
    channels: int = 2
    name: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.number <= MAX_TRACK_NUMBER:
            raise ValueError(f"track number {self.number} is out of range 1..{MAX_TRACK_NUMBER}")
        if _CODEC_KINDS.get(self.codec) != self.kind:
            raise ValueError(f"track {self.number}: codec {self.codec!r} is not a {self.kind!r} codec")
        if self.width < 0 or self.height < 0:
            raise ValueError(f"track {self.number}: picture size {self.width}x{self.height} is negative")
        if self.kind == "audio" and self.channels not in (1, 2):
            raise ValueError(f"track {self.number}: {self.channels} Opus channels (mapping family 0 has 1 or 2)")

    @property
    def codec_id(self) -> str:
        return _CODEC_IDS[self.codec]


@dataclass(frozen=True)
class WebmSummary:
    """What a finalised (or inspected) file holds."""

    path: Path
    duration_ms: int
    size: int
    frames: dict[int, int]
    clusters: int
    cues: int
    truncated_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Frame:
    """One block of a file: track number, time from the file's start, keyframe flag, frame bytes."""

    track: int
    timestamp_ms: int
    keyframe: bool
    data: bytes


@dataclass(frozen=True)
class Layout:
    """Where finalising writes: absolute file offsets (``*_pos``) and Segment-relative positions."""

    #: Offset of the Segment's 8-byte size vint.
    segment_size_pos: int
    #: Offset of the Segment's first child: positions in SeekHead and Cues are relative to it.
    data_start: int
    #: Bytes at ``data_start`` reserved for the SeekHead (SeekHead and/or Void elements).
    room: int
    info_position: int
    tracks_position: int
    #: Offset of the Duration float payload (0: the file has no Duration to patch) and its width.
    duration_pos: int
    duration_width: int
    #: Offset just after the head (Info and Tracks): where clusters begin.
    clusters_start: int


@dataclass(frozen=True)
class ClusterRef:
    """A written cluster, for the Cues: its Segment-relative position and, if it is a seek point,
    the track and time of the CuePoint (``cue_track`` 0: none)."""

    position: int
    cue_track: int
    cue_time: int


# -- pieces shared by the writer and the repairer ---------------------------------------------


def opus_duration_ms(packet: bytes) -> float:
    """Duration of an Opus packet from its TOC byte (RFC 6716 section 3.1); 0.0 if malformed."""
    if not packet:
        return 0.0
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        frame_ms = (10.0, 20.0, 40.0, 60.0)[config & 3]
    elif config < 16:
        frame_ms = (10.0, 20.0)[config & 1]
    else:
        frame_ms = (2.5, 5.0, 10.0, 20.0)[config & 3]
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    elif len(packet) >= 2:
        count = packet[1] & 0x3F
    else:
        return 0.0
    return frame_ms * count


class DurationTracker:
    """The duration of a file: over tracks, the last block's time plus that block's duration
    (Opus: from its TOC; video: its interval to the previous frame, at most MAX_VIDEO_FRAME_MS)."""

    def __init__(self, audio_tracks: Iterable[int]) -> None:
        self._audio = frozenset(audio_tracks)
        self._last: dict[int, tuple[int, float]] = {}

    def add(self, track: int, timestamp_ms: int, data: bytes) -> None:
        if track in self._audio:
            length = opus_duration_ms(data)
        else:
            previous = self._last.get(track)
            length = float(min(timestamp_ms - previous[0], MAX_VIDEO_FRAME_MS)) if previous else 0.0
        self._last[track] = (timestamp_ms, length)

    def end_ms(self) -> float:
        return max((ts + length for ts, length in self._last.values()), default=0.0)


def cue_of(blocks: Sequence[Frame], position: int, video_tracks: frozenset[int]) -> ClusterRef:
    """The ClusterRef of a cluster at ``position`` holding ``blocks`` (in cluster order): a seek
    point when its first video block is a keyframe or, in a file without video, always."""
    if not video_tracks:
        return ClusterRef(position, blocks[0].track, blocks[0].timestamp_ms) if blocks else ClusterRef(position, 0, 0)
    for block in blocks:
        if block.track in video_tracks:
            if block.keyframe:
                return ClusterRef(position, block.track, block.timestamp_ms)
            break
    return ClusterRef(position, 0, 0)


def _track_entry(spec: TrackSpec) -> bytes:
    fields = [
        ebml.uint(ebml.TRACK_NUMBER, spec.number),
        ebml.uint(ebml.TRACK_UID, spec.number),
        ebml.uint(ebml.FLAG_LACING, 0),
        ebml.string(ebml.CODEC_ID, spec.codec_id),
    ]
    if spec.name:
        fields.append(ebml.string(ebml.NAME, spec.name))
    if spec.kind == "video":
        fields.insert(2, ebml.uint(ebml.TRACK_TYPE, ebml.TRACK_TYPE_VIDEO))
        width, height = (spec.width, spec.height) if spec.width and spec.height else (NOMINAL_WIDTH, NOMINAL_HEIGHT)
        fields.append(ebml.master(ebml.VIDEO, ebml.uint(ebml.PIXEL_WIDTH, width), ebml.uint(ebml.PIXEL_HEIGHT, height)))
    else:
        fields.insert(2, ebml.uint(ebml.TRACK_TYPE, ebml.TRACK_TYPE_AUDIO))
        # OpusHead (RFC 7845 section 5.1): version 1, channels, pre-skip 0, 48 kHz, gain 0, family 0.
        opus_head = b"OpusHead" + struct.pack("<BBHIhB", 1, spec.channels, 0, OPUS_SAMPLE_RATE, 0, 0)
        fields += [
            ebml.binary(ebml.CODEC_PRIVATE, opus_head),
            ebml.uint(ebml.CODEC_DELAY, 0),
            ebml.uint(ebml.SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS),
            ebml.master(ebml.AUDIO, ebml.float64(ebml.SAMPLING_FREQUENCY, float(OPUS_SAMPLE_RATE)),
                        ebml.uint(ebml.CHANNELS, spec.channels)),
        ]
    return ebml.master(ebml.TRACK_ENTRY, *fields)


def build_head(tracks: Sequence[TrackSpec], *, writing_app: str, title: str, date_utc: datetime) -> tuple[bytes, Layout]:
    """The bytes the constructor writes (EBML header to Tracks) and where finalising patches them."""
    header = ebml.master(
        ebml.EBML,
        ebml.uint(ebml.EBML_VERSION, 1),
        ebml.uint(ebml.EBML_READ_VERSION, 1),
        ebml.uint(ebml.EBML_MAX_ID_LENGTH, 4),
        ebml.uint(ebml.EBML_MAX_SIZE_LENGTH, 8),
        ebml.string(ebml.DOC_TYPE, "webm"),
        ebml.uint(ebml.DOC_TYPE_VERSION, 4),
        ebml.uint(ebml.DOC_TYPE_READ_VERSION, 2),
    )
    segment = ebml.encode_id(ebml.SEGMENT) + ebml.UNKNOWN_SIZE
    date_ns = (date_utc - _MATROSKA_EPOCH) // timedelta(microseconds=1) * 1000
    info_fields = [
        ebml.uint(ebml.TIMESTAMP_SCALE, 1_000_000),
        ebml.string(ebml.MUXING_APP, MUXING_APP),
        ebml.string(ebml.WRITING_APP, writing_app),
    ]
    if title:
        info_fields.append(ebml.string(ebml.TITLE, title))
    info_fields += [ebml.sint(ebml.DATE_UTC, date_ns, 8), ebml.float64(ebml.DURATION, 0.0)]  # Duration last
    info = ebml.master(ebml.INFO, *info_fields)
    track_list = ebml.master(ebml.TRACKS, *(_track_entry(spec) for spec in tracks))
    data_start = len(header) + len(segment)
    info_position = SEEK_HEAD_ROOM
    tracks_position = info_position + len(info)
    layout = Layout(
        segment_size_pos=len(header) + 4,
        data_start=data_start,
        room=SEEK_HEAD_ROOM,
        info_position=info_position,
        tracks_position=tracks_position,
        duration_pos=data_start + tracks_position - 8,
        duration_width=8,
        clusters_start=data_start + tracks_position + len(track_list),
    )
    return header + segment + ebml.void(SEEK_HEAD_ROOM) + info + track_list, layout


def encode_cluster(blocks: Sequence[Frame]) -> bytes:
    """A Cluster of known size; ``blocks`` sorted by time, the first one's time is the cluster's."""
    base = blocks[0].timestamp_ms
    parts = [ebml.uint(ebml.TIMESTAMP, base)]
    block_id = ebml.encode_id(ebml.SIMPLE_BLOCK)
    for block in blocks:
        parts += [
            block_id,
            ebml.encode_size(len(block.data) + _BLOCK_HEAD.size),
            _BLOCK_HEAD.pack(0x80 | block.track, block.timestamp_ms - base, _KEYFRAME_FLAG if block.keyframe else 0),
            block.data,
        ]
    payload = b"".join(parts)
    return ebml.encode_id(ebml.CLUSTER) + ebml.encode_size(len(payload)) + payload


def _encode_cues(refs: Sequence[ClusterRef]) -> bytes:
    points = [
        ebml.master(ebml.CUE_POINT, ebml.uint(ebml.CUE_TIME, ref.cue_time),
                    ebml.master(ebml.CUE_TRACK_POSITIONS, ebml.uint(ebml.CUE_TRACK, ref.cue_track),
                                ebml.uint(ebml.CUE_CLUSTER_POSITION, ref.position)))
        for ref in refs if ref.cue_track
    ]
    return ebml.master(ebml.CUES, *points) if points else b""


def _encode_seek_head(layout: Layout, cues_position: int | None) -> bytes:
    """SeekHead and Void filling the reserved room exactly (b"" when the room is too small)."""
    targets = [(ebml.INFO, layout.info_position), (ebml.TRACKS, layout.tracks_position)]
    if cues_position is not None:
        targets.append((ebml.CUES, cues_position))
    seek_head = ebml.master(ebml.SEEK_HEAD, *(
        ebml.master(ebml.SEEK, ebml.binary(ebml.SEEK_ID, ebml.encode_id(target)), ebml.uint(ebml.SEEK_POSITION, pos, 8))
        for target, pos in targets))
    rest = layout.room - len(seek_head)
    if rest == 0:
        return seek_head
    return seek_head + ebml.void(rest) if rest >= 2 else b""


def _pwrite(fd: int, data: bytes, offset: int) -> None:
    written = os.pwrite(fd, data, offset)
    if written != len(data):
        raise OSError(errno.ENOSPC, f"no space left on device (a short write: {written} of {len(data)} bytes)")


def finalise(fd: int, layout: Layout, refs: Sequence[ClusterRef], end: int, duration_ms: float) -> tuple[int, int]:
    """Append the Cues at ``end`` (the end of the last complete cluster), patch Duration, SeekHead
    and Segment size, fsync; returns (file size, cue points). OSError on failure: the Segment
    size is patched last, so an interrupted finalise leaves a file repair() can finish."""
    cues = _encode_cues(refs)
    cues_position = None
    if cues:
        _pwrite(fd, cues, end)
        cues_position = end - layout.data_start
        end += len(cues)
    os.ftruncate(fd, end)
    if layout.duration_pos:
        _pwrite(fd, ebml.encode_float(duration_ms, layout.duration_width), layout.duration_pos)
    seek_head = _encode_seek_head(layout, cues_position)
    if seek_head:
        _pwrite(fd, seek_head, layout.data_start)
    os.fsync(fd)
    _pwrite(fd, ebml.encode_size(end - layout.data_start, 8), layout.segment_size_pos)
    os.fsync(fd)
    return end, sum(1 for ref in refs if ref.cue_track)


# -- the writer -------------------------------------------------------------------------------


@dataclass
class _Cluster:
    """The blocks buffered for the next cluster and their time span."""

    blocks: list[Frame] = field(default_factory=list)
    first_ms: int = 0
    last_ms: int = 0

    def fits(self, timestamp_ms: int, cluster_ms: int) -> bool:
        first, last = min(self.first_ms, timestamp_ms), max(self.last_ms, timestamp_ms)
        return timestamp_ms - self.first_ms < cluster_ms and last - first <= _INT16_MAX

    def add(self, frame: Frame) -> None:
        if not self.blocks:
            self.first_ms = self.last_ms = frame.timestamp_ms
        self.first_ms = min(self.first_ms, frame.timestamp_ms)
        self.last_ms = max(self.last_ms, frame.timestamp_ms)
        self.blocks.append(frame)


class WebmWriter:
    """Writes one WebM file, cluster by cluster (see the module docstring)."""

    def __init__(self, path: Path, tracks: Sequence[TrackSpec], *, cluster_ms: int = 500,
                 writing_app: str = "Cabinet", title: str = "", date_utc: datetime | None = None) -> None:
        if not tracks:
            raise ValueError("a WebM file needs at least one track")
        numbers = [spec.number for spec in tracks]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"track numbers {numbers} are not unique")
        if cluster_ms <= 0:
            raise ValueError(f"cluster_ms {cluster_ms} is not positive")
        if date_utc is None:
            date_utc = datetime.now(UTC)
        elif date_utc.tzinfo is None:
            raise ValueError("date_utc must be timezone-aware")
        head, self._layout = build_head(tracks, writing_app=writing_app, title=title, date_utc=date_utc)
        self.path = Path(path)
        self._cluster_ms = cluster_ms
        self._tracks = {spec.number: spec for spec in tracks}
        self._video = frozenset(spec.number for spec in tracks if spec.kind == "video")
        self._duration = DurationTracker(spec.number for spec in tracks if spec.kind == "audio")
        self._cluster = _Cluster()
        self._refs: list[ClusterRef] = []
        self._frames = {spec.number: 0 for spec in tracks}
        self._track_last = {spec.number: -1 for spec in tracks}
        self._last_ms = -1
        self._failed = False
        self._aborted = False
        self._summary: WebmSummary | None = None
        self._end = 0
        self._fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o640)
        try:
            self._write(head, "writing the header")
        except RecordingWriteError:
            os.close(self._fd)
            self.path.unlink(missing_ok=True)
            raise

    @property
    def failed(self) -> bool:
        return self._failed

    @property
    def bytes_written(self) -> int:
        """Bytes in the file: head and complete clusters (and, once closed, the Cues)."""
        return self._end

    @property
    def last_timestamp_ms(self) -> int:
        return self._last_ms

    def add_frame(self, track: int, timestamp_ms: int, data: bytes, *, keyframe: bool) -> None:
        """Buffer one frame; may first write the current cluster (see the cluster rules in the
        task: a video keyframe, cluster_ms, the int16 relative time). ValueError for an unknown
        track, a negative time, empty data or a time before the track's previous one."""
        self._check_open()
        spec = self._tracks.get(track)
        if spec is None:
            raise ValueError(f"{self.path.name}: no track {track} (tracks {sorted(self._tracks)})")
        if timestamp_ms < 0:
            raise ValueError(f"{self.path.name}: track {track}: timestamp {timestamp_ms} ms is negative")
        if timestamp_ms < self._track_last[track]:
            raise ValueError(f"{self.path.name}: track {track}: timestamp {timestamp_ms} ms is before the previous "
                             f"one ({self._track_last[track]} ms)")
        if not data:
            raise ValueError(f"{self.path.name}: track {track}: empty frame at {timestamp_ms} ms")
        keyframe = keyframe or spec.kind == "audio"
        cluster = self._cluster
        if cluster.blocks and ((keyframe and spec.kind == "video") or not cluster.fits(timestamp_ms, self._cluster_ms)):
            self._write_cluster()
        self._cluster.add(Frame(track, timestamp_ms, keyframe, bytes(data)))
        self._track_last[track] = timestamp_ms
        self._last_ms = max(self._last_ms, timestamp_ms)

    def flush(self) -> None:
        """Write the buffered cluster, if any (one os.write of the complete element)."""
        self._check_open()
        if self._cluster.blocks:
            self._write_cluster()

    def close(self) -> WebmSummary:
        """Flush, then finalise (Cues, Duration, SeekHead, Segment size), fsync and close.
        Idempotent. A failed writer finalises what the file holds; a flush failing here still
        finalises the earlier clusters, then raises."""
        if self._summary is not None:
            return self._summary
        if self._aborted:
            raise RecordingError(f"{self.path.name}: the writer was aborted; repair the file")
        pending: RecordingWriteError | None = None
        if not self._failed and self._cluster.blocks:
            try:
                self._write_cluster()
            except RecordingWriteError as exc:
                pending = exc
        try:
            size, cues = finalise(self._fd, self._layout, self._refs, self._end, self._duration.end_ms())
        except OSError as exc:
            self._failed = True
            self._release()
            raise RecordingWriteError(f"{self.path.name}: finalising failed: {exc.strerror or exc}", exc.errno) from exc
        self._release()
        self._end = size
        self._summary = WebmSummary(self.path, round(self._duration.end_ms()), size, dict(self._frames),
                                    len(self._refs), cues)
        if pending is not None:
            raise pending
        return self._summary

    def abort(self) -> None:
        """Close the file as it is, unfinalised (a crash, for tests; repair() finishes it)."""
        if self._summary is None and not self._aborted:
            self._aborted = True
            self._cluster = _Cluster()
            self._release()

    def _release(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def _check_open(self) -> None:
        if self._failed:
            raise RecordingWriteError(f"{self.path.name}: the writer failed earlier")
        if self._summary is not None or self._aborted:
            raise RecordingError(f"{self.path.name}: the writer is closed")

    def _write_cluster(self) -> None:
        blocks = sorted(self._cluster.blocks, key=lambda block: block.timestamp_ms)
        self._cluster = _Cluster()
        position = self._end - self._layout.data_start
        self._write(encode_cluster(blocks), "writing a cluster")
        self._refs.append(cue_of(blocks, position, self._video))
        for block in blocks:
            self._frames[block.track] += 1
            self._duration.add(block.track, block.timestamp_ms, block.data)

    def _write(self, data: bytes, what: str) -> None:
        """One os.write of ``data`` at the end; on failure cut back to the last complete element."""
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"no space left on device (a short write: {written} of {len(data)} bytes)")
        except OSError as exc:
            self._failed = True
            self._cluster = _Cluster()
            try:
                os.ftruncate(self._fd, self._end)
                os.lseek(self._fd, self._end, os.SEEK_SET)
            except OSError:
                pass  # the partial cluster stays at the end; repair() cuts it off
            raise RecordingWriteError(f"{self.path.name}: {what} failed: {exc.strerror or exc}", exc.errno) from exc
        self._end += written
