"""Export: one MP4 (H.264 + AAC) of the proceedings, with the agenda as chapters.

The only place in the product where media is decoded and encoded, and only on demand (a
background job the archive page starts and follows with a progress bar). Nothing on the
recording or forwarding path imports this module (tests/recordings/test_session_recorder.py
checks that no other module of recordings/ imports PyAV).

Pictures keep the size of the first frame (a stage switch to a camera of another size is scaled
to it); timestamps are the recording's own (ms), so gaps (pauses, a crash) stay gaps and chapter
times match the archive page's. ``progress(fraction)`` is called as the job advances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.audio.fifo import AudioFifo

from .errors import RecordingError

MS = Fraction(1, 1000)
AAC_FRAME = 1024


@dataclass(frozen=True)
class Chapter:
    start_ms: int
    end_ms: int
    title: str


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    video_frames: int
    audio_frames: int
    duration_ms: int


def export_mp4(source: Path, destination: Path, *, chapters: Sequence[Chapter] = (), duration_ms: int = 0,
               progress: Callable[[float], None] | None = None, crf: int = 26, preset: str = "veryfast",
               should_stop: Callable[[], bool] | None = None) -> ExportSummary:
    """Transcode ``source`` (a proceedings WebM) into ``destination`` (written to a temporary name
    first, renamed when complete: a failed export never leaves a half file under the real name)."""
    partial = destination.with_name(destination.name + ".part")
    try:
        summary = _transcode(source, partial, chapters, duration_ms, progress, crf, preset, should_stop)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(destination)
    return ExportSummary(destination, summary.video_frames, summary.audio_frames, summary.duration_ms)


def _transcode(source: Path, target: Path, chapters: Sequence[Chapter], duration_ms: int,
               progress: Callable[[float], None] | None, crf: int, preset: str,
               should_stop: Callable[[], bool] | None) -> ExportSummary:
    try:
        inp = av.open(str(source))
    except av.FFmpegError as exc:
        raise RecordingError(f"{source.name} cannot be read: {exc}") from exc
    with inp, av.open(str(target), "w", format="mp4") as out:
        v_in = next((s for s in inp.streams if s.type == "video"), None)
        a_in = next((s for s in inp.streams if s.type == "audio"), None)
        if v_in is None and a_in is None:
            raise RecordingError(f"{source.name} has no audio or video")
        v_out: Any = None
        a_out: Any = None
        fifo = AudioFifo()
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        if a_in is not None:
            a_out = out.add_stream("aac", rate=48000, layout="stereo")
            a_out.bit_rate = 96_000
        if chapters:
            out.set_chapters([{"id": i + 1, "start": c.start_ms, "end": max(c.end_ms, c.start_ms + 1), "time_base": MS,
                               "metadata": {"title": c.title}} for i, c in enumerate(chapters)])
        size: tuple[int, int] | None = None
        counts = {"video": 0, "audio": 0}
        next_audio_pts: int | None = None
        last_ms = 0
        streams = [s for s in (v_in, a_in) if s is not None]
        for packet in inp.demux(*streams):
            if should_stop is not None and should_stop():
                raise RecordingError("the export was cancelled")
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue  # a damaged frame (a crash cut it): skip it, as a player would
            for frame in frames:
                if frame.pts is None:
                    continue
                ms = int(frame.pts * frame.time_base * 1000)
                last_ms = max(last_ms, ms)
                if packet.stream.type == "video":
                    if v_out is None:
                        size = (frame.width - frame.width % 2, frame.height - frame.height % 2)
                        v_out = out.add_stream("libx264", rate=30, options={"crf": str(crf), "preset": preset})
                        v_out.width, v_out.height = size
                        v_out.pix_fmt = "yuv420p"
                        v_out.time_base = MS
                        v_out.codec_context.time_base = MS
                    assert size is not None
                    picture = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                    picture.pts, picture.time_base = ms, MS
                    for encoded in v_out.encode(picture):
                        out.mux(encoded)
                    counts["video"] += 1
                else:
                    start = ms * 48
                    expected = None if next_audio_pts is None else next_audio_pts + fifo.samples
                    if expected is None or abs(start - expected) > 4800:
                        # The first frame, or a gap of more than 100 ms (pause, DTX, crash): finish what
                        # is buffered, then go on from the new frame's time.
                        drained = _drain_fifo(fifo, a_out, out, next_audio_pts, final=True)
                        fifo = AudioFifo()
                        next_audio_pts = max(start, drained or 0)
                    for resampled in resampler.resample(frame):
                        resampled.pts = None
                        fifo.write(resampled)
                    next_audio_pts = _drain_fifo(fifo, a_out, out, next_audio_pts, final=False)
                    counts["audio"] += 1
            if progress is not None and duration_ms > 0:
                progress(min(1.0, last_ms / duration_ms))
        if a_out is not None:
            _drain_fifo(fifo, a_out, out, next_audio_pts, final=True)
            for encoded in a_out.encode(None):
                out.mux(encoded)
        if v_out is not None:
            for encoded in v_out.encode(None):
                out.mux(encoded)
    if progress is not None:
        progress(1.0)
    return ExportSummary(target, counts["video"], counts["audio"], last_ms)


def _drain_fifo(fifo: AudioFifo, stream: Any, out: Any, pts: int | None, *, final: bool) -> int | None:
    """Encode whole AAC frames from ``fifo`` from ``pts`` (48 kHz samples) on; returns the next pts.
    ``final`` (a gap follows, or the end): the last partial frame is padded with silence (the
    encoder takes only whole frames before its last)."""
    if pts is None or stream is None:
        return pts
    if final and fifo.samples % AAC_FRAME:
        silence = av.AudioFrame(format="fltp", layout="stereo", samples=AAC_FRAME - fifo.samples % AAC_FRAME)
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        silence.sample_rate = 48000
        silence.pts = None
        fifo.write(silence)
    while fifo.samples >= AAC_FRAME:
        frame = fifo.read(AAC_FRAME)
        if frame is None:
            break
        frame.pts = pts
        frame.time_base = Fraction(1, 48000)
        pts += frame.samples
        for encoded in stream.encode(frame):
            out.mux(encoded)
    return pts
