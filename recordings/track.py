"""One recorded file and the streams that feed it: RTP packets in, WebM blocks out, no codec.

:class:`RecordedFile` owns a :class:`recordings.webm.WebmWriter` (opened lazily: a video file
waits for its first keyframe, which gives the picture size) and turns a write error into a
*failed* file: the error is reported once through ``on_failure`` and the file keeps what it had
(the writer truncates to its last complete cluster); the live session never sees the error.

:class:`StreamFeed` is one RTP stream into one track of a file: VP8 frames assembled from
packets (:class:`recordings.frames.Vp8Assembler`) or Opus frames as they come, placed on the
recording's time line by a :class:`recordings.timeline.TrackClock`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from media.rtp_packet import RtpPacketView

from .errors import RecordingError
from .frames import EncodedFrame, Vp8Assembler, opus_frame
from .timeline import TrackClock
from .webm import TrackSpec, WebmSummary, WebmWriter

#: Picture size written for a video track opened before its first keyframe (the proceedings
#: file, whose stage changes publisher and size); players take the size from the frames.
NOMINAL_SIZE = (1280, 720)


class RecordedFile:
    """One WebM file of a recording (see the module docstring)."""

    def __init__(self, directory: Path, name: str, *, title: str,
                 on_failure: Callable[[RecordedFile, RecordingError], None]) -> None:
        self.name = name
        self.path = directory / name
        self.title = title
        self.specs: list[TrackSpec] = []
        self.writer: WebmWriter | None = None
        self.failed = False
        self.error = ""
        self.summary: WebmSummary | None = None
        self._on_failure = on_failure

    @property
    def opened(self) -> bool:
        return self.writer is not None

    def open(self, specs: list[TrackSpec]) -> bool:
        if self.writer is not None or self.failed:
            return self.writer is not None
        try:
            self.writer = WebmWriter(self.path, specs, title=self.title)
        except (OSError, RecordingError) as exc:
            self._fail(exc if isinstance(exc, RecordingError) else RecordingError(f"cannot create {self.name}: {exc}"))
            return False
        self.specs = specs
        return True

    def write(self, track: int, media_ms: int, data: bytes, keyframe: bool) -> None:
        writer = self.writer
        if writer is None or self.failed:
            return
        try:
            writer.add_frame(track, media_ms, data, keyframe=keyframe)
        except RecordingError as exc:
            self._fail(exc)

    def flush(self) -> None:
        if self.writer is not None and not self.failed:
            try:
                self.writer.flush()
            except RecordingError as exc:
                self._fail(exc)

    def close(self) -> WebmSummary | None:
        """Finalise (cues, duration); None when nothing was ever written."""
        writer, self.writer = self.writer, None
        if writer is None:
            return self.summary
        try:
            self.summary = writer.close()
        except RecordingError as exc:
            self._fail(exc)
        return self.summary

    def _fail(self, exc: RecordingError) -> None:
        if self.failed:
            return
        self.failed = True
        self.error = str(exc)
        self._on_failure(self, exc)


@dataclass
class FeedStats:
    packets: int = 0
    frames: int = 0
    first_ms: int = -1
    last_ms: int = -1


class StreamFeed:
    """One RTP stream into track ``track`` of ``file`` (see the module docstring)."""

    def __init__(self, *, file: RecordedFile, track: int, kind: str, clock: TrackClock,
                 request_keyframe: Callable[[], object], lazy_open: Callable[[EncodedFrame], list[TrackSpec]] | None
                 = None) -> None:
        self.file = file
        self.track = track
        self.kind = kind
        self.clock = clock
        self.stats = FeedStats()
        self.paused = False
        self._request_keyframe = request_keyframe
        self._lazy_open = lazy_open
        self._assembler = Vp8Assembler() if kind == "video" else None
        self._asked = False

    def on_packet(self, packet: RtpPacketView) -> None:
        """One packet of the stream (hot path of the recorder: copies the payload it keeps)."""
        if self.paused or self.file.failed:
            return
        self.stats.packets += 1
        assembler = self._assembler
        if assembler is None:
            frame = opus_frame(packet)
            if frame is not None:
                self._write(frame)
            return
        for frame in assembler.push(packet):
            self._write(frame)
        self._check_keyframe()

    def tick(self, now_ms: int) -> None:
        """Timer: give up frames that waited too long (no packet may be coming)."""
        if self._assembler is not None and not self.paused:
            for frame in self._assembler.flush_stale(now_ms):
                self._write(frame)
            self._check_keyframe()

    def _check_keyframe(self) -> None:
        assert self._assembler is not None
        if self._assembler.needs_keyframe:
            if not self._asked:
                self._asked = True
                self._request_keyframe()
        else:
            self._asked = False

    def ask_keyframe_again(self) -> None:
        """Still no keyframe (the request may have been throttled or lost): ask once more."""
        if self._assembler is not None and self._assembler.needs_keyframe:
            self._request_keyframe()

    def _write(self, frame: EncodedFrame) -> None:
        file = self.file
        if not file.opened:
            if self._lazy_open is None or not file.open(self._lazy_open(frame)):
                return
        media_ms = self.clock.media_ms(frame.rtp_timestamp, frame.arrival_ms)
        stats = self.stats
        if stats.first_ms < 0:
            stats.first_ms = media_ms
        stats.last_ms = media_ms
        stats.frames += 1
        file.write(self.track, media_ms, frame.data, frame.keyframe)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """After a pause video restarts at a keyframe (the assembler drops delta frames until then)."""
        self.paused = False
        if self._assembler is not None:
            self._assembler = Vp8Assembler()
            self._asked = False
            self._check_keyframe()

    @property
    def frames_lost(self) -> int:
        return self._assembler.stats.frames_lost if self._assembler is not None else 0
