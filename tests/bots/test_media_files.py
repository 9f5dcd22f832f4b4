"""Pre-encoded media: deterministic, cached by parameters, and what it claims to be."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from bots import media_files
from bots.media_files import MediaParams, load_media
from bots.picture import read_index

SMALL = MediaParams(width=160, height=96, fps=10, video_bitrate=150_000, loop_seconds=1.0, audio_loop_seconds=0.4)


def test_generation_is_deterministic_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_media(SMALL, tmp_path / "a")
    other = load_media(SMALL, tmp_path / "b")
    assert first.generated and other.generated
    assert first.sha256 == other.sha256 and first.video == other.video and first.speech == other.speech
    assert first.path is not None and first.path.parent == tmp_path / "a"

    def no_encoding(*args: object) -> None:
        raise AssertionError("encoded again")

    monkeypatch.setattr(media_files, "_encode_video", no_encoding)
    monkeypatch.setattr(media_files, "_encode_audio", no_encoding)
    again = load_media(SMALL, tmp_path / "a")
    assert not again.generated and again.sha256 == first.sha256 and again.video == first.video
    with pytest.raises(AssertionError, match="encoded again"):
        load_media(MediaParams(**{**SMALL.__dict__, "fps": 5}), tmp_path / "a")  # other key: would encode


def test_corrupt_cache_is_regenerated(tmp_path: Path) -> None:
    media = load_media(SMALL, tmp_path)
    assert media.path is not None
    raw = bytearray(media.path.read_bytes())
    raw[-5] ^= 0xFF
    media.path.write_bytes(bytes(raw))
    again = load_media(SMALL, tmp_path)
    assert again.generated and again.sha256 == media.sha256


def test_video_loop_shows_its_index_and_has_one_keyframe(tmp_path: Path) -> None:
    media = load_media(SMALL, tmp_path)
    assert len(media.video) == SMALL.video_frames == 10
    assert media.keyframes == [True] + [False] * 9
    decoder = av.CodecContext.create("libvpx", "r")
    shown = [read_index(frame) for packet in media.video for frame in decoder.decode(av.Packet(packet))]
    assert shown == list(range(10))


def test_default_media_rate_and_audio_levels(media: media_files.PreEncodedMedia) -> None:
    params = media.params
    kbps = sum(map(len, media.video)) * 8 / params.loop_seconds / 1000
    assert 350 < kbps < 650, kbps
    assert len(media.speech) == len(media.silence) == params.audio_packets == 100
    assert max(p.level for p in media.speech) < 30  # loud: well above the SFU's speech threshold
    assert {p.level for p in media.silence} == {127}
