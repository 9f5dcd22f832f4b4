"""The on-demand MP4 export of the proceedings: H.264 + AAC, chapters, gaps kept, progress, no half files."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from bots.media_files import PreEncodedMedia
from recordings.errors import RecordingError
from recordings.export import Chapter, export_mp4
from recordings.webm import TrackSpec, WebmWriter


def proceedings(path: Path, media: PreEncodedMedia, *, seconds: int, gap: tuple[int, int] | None = None) -> Path:
    """An audio+video WebM like the recorder's proceedings; nothing is written inside ``gap`` (ms)."""
    writer = WebmWriter(path, [TrackSpec(1, "audio", "OPUS"), TrackSpec(2, "video", "VP8", width=320, height=180)])
    frames = [(i * 20, 1, media.speech[i % len(media.speech)].data, True) for i in range(seconds * 50)]
    frames += [(i * 1000 // 15, 2, media.video[i % len(media.video)], media.keyframes[i % len(media.video)])
               for i in range(seconds * 15)]
    for ms, track, data, key in sorted(frames, key=lambda f: f[0]):
        if gap is None or not gap[0] <= ms < gap[1]:
            writer.add_frame(track, ms, data, keyframe=key)
    writer.close()
    return path


def test_export_is_h264_aac_with_chapters_and_keeps_the_gap(tmp_path: Path, small_media: PreEncodedMedia) -> None:
    source = proceedings(tmp_path / "proceedings.webm", small_media, seconds=8, gap=(3000, 5000))
    progress: list[float] = []
    summary = export_mp4(source, tmp_path / "out.mp4", duration_ms=8000, progress=progress.append,
                         chapters=[Chapter(0, 4000, "Budget"), Chapter(4000, 8000, "ទឹកជំនន់ Floods")])
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert summary.video_frames == 8 * 15 - 30  # 2 s of the 8 are the gap
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert [s.codec_context.name for s in (*container.streams.audio, *container.streams.video)] == ["aac", "h264"]
        assert [c["metadata"]["title"] for c in container.chapters()] == ["Budget", "ទឹកជំនន់ Floods"]
        video_pts = []
        for frame in container.decode(video=0):
            video_pts.append(float(frame.pts * frame.time_base))
        assert len(video_pts) == summary.video_frames
        assert not any(3.0 < t < 4.99 for t in video_pts)  # the gap stays a gap
        assert 7.5 < video_pts[-1] < 8.0
        assert container.duration is not None and 7.5 < container.duration / 1e6 < 8.5
    assert not (tmp_path / "out.mp4.part").exists()


def test_a_failed_or_cancelled_export_leaves_no_file(tmp_path: Path, small_media: PreEncodedMedia) -> None:
    (tmp_path / "bad.webm").write_bytes(b"not a webm at all")
    with pytest.raises(RecordingError):
        export_mp4(tmp_path / "bad.webm", tmp_path / "out.mp4")
    source = proceedings(tmp_path / "p.webm", small_media, seconds=2)
    with pytest.raises(RecordingError, match="cancelled"):
        export_mp4(source, tmp_path / "out.mp4", should_stop=lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.webm", "p.webm"]
