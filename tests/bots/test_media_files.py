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


# -- temporal layers (L1T3) -------------------------------------------------------------------


def _pictures(decoder_name: str, frames: list[bytes]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create(decoder_name, "r")
    return [frame for data in frames for frame in decoder.decode(av.Packet(data))]


def _planes(frame: av.VideoFrame) -> bytes:
    return b"".join(bytes(plane) for plane in frame.planes)


def test_default_loop_has_the_l1t3_structure(media: media_files.PreEncodedMedia) -> None:
    assert media.params.temporal_layers == 3
    assert media.temporal_ids == [0, 2, 1, 2] * 15
    assert [media.temporal_ids.count(tid) for tid in range(3)] == [15, 15, 30]  # 1/4, 1/4, 1/2
    # Layer sync: the keyframe and the upper-layer frames that reference TL0 only (not the second TL2).
    assert media.layer_sync == [True, True, True, False] + [False, True, True, False] * 14
    tl0, tl1, tl2 = media.layer_bitrates()
    total = tl0 + tl1 + tl2
    # About libwebrtc's 40 % / 60 % / 100 % cumulative split (TL0 also carries the keyframe).
    assert 0.35 < tl0 / total < 0.55 and 0.5 < (tl0 + tl1) / total < 0.7, (tl0, tl1, tl2)


@pytest.mark.parametrize("decoder", ["libvpx", "vp8"])
def test_each_layer_subset_decodes_to_the_same_pictures(media: media_files.PreEncodedMedia, decoder: str) -> None:
    """The proof that the layering is real: TL0 alone and TL0+TL1 decode without error, one picture
    per frame, identical to the pictures of those frames when the whole stream is decoded."""
    full = _pictures(decoder, media.video)
    assert [read_index(f) for f in full] == list(range(len(media.video)))
    for top in (0, 1):
        chosen = [i for i, tid in enumerate(media.temporal_ids) if tid <= top]
        subset = _pictures(decoder, [media.video[i] for i in chosen])
        assert len(subset) == len(chosen) == len(media.video) // (4 if top == 0 else 2)
        assert [read_index(f) for f in subset] == chosen
        assert [_planes(f) for f in subset] == [_planes(full[i]) for i in chosen], f"TID <= {top}"


@pytest.mark.parametrize("decoder", ["libvpx", "vp8"])
def test_layer_sync_frames_need_only_tl0_and_the_others_need_tl1(media: media_files.PreEncodedMedia, decoder: str) -> None:
    """Without TL1, the TL2 frames flagged layer sync still decode exactly; the other TL2 frames
    (referencing the TL1 frame) do not: the reference structure is the layered one, and Y is right."""
    full = _pictures(decoder, media.video)
    chosen = [i for i, tid in enumerate(media.temporal_ids) if tid != 1]
    subset = dict(zip(chosen, _pictures(decoder, [media.video[i] for i in chosen])))
    tl2 = [i for i in chosen if media.temporal_ids[i] == 2]
    assert all(_planes(subset[i]) == _planes(full[i]) for i in tl2 if media.layer_sync[i])
    assert all(_planes(subset[i]) != _planes(full[i]) for i in tl2 if not media.layer_sync[i])


def test_check_layering_refuses_a_stream_that_is_not_layered(tmp_path: Path) -> None:
    single = load_media(MediaParams(**{**SMALL.__dict__, "temporal_layers": 1}), tmp_path)
    assert single.temporal_ids == [0] * 10 and single.layer_sync == [True] + [False] * 9
    assert single.layer_bitrates() == [sum(map(len, single.video)) * 8]
    with pytest.raises(media_files.MediaFileError, match="TID <= 0 alone decode to other pictures"):
        media_files.check_layering(single.video, [0, 2, 1, 2] * 2 + [0, 2])


def test_layered_and_single_layer_loops_are_cached_apart(tmp_path: Path) -> None:
    layered = load_media(SMALL, tmp_path)
    single = load_media(MediaParams(**{**SMALL.__dict__, "temporal_layers": 1}), tmp_path)
    assert layered.path != single.path and layered.video != single.video
    again = load_media(SMALL, tmp_path)
    assert not again.generated
    assert (again.temporal_ids, again.layer_sync) == (layered.temporal_ids, layered.layer_sync) == (
        [0, 2, 1, 2, 0, 2, 1, 2, 0, 2], [True, True, True, False, False, True, True, False, False, True])


def test_cache_of_the_previous_format_is_regenerated(tmp_path: Path) -> None:
    media = load_media(SMALL, tmp_path)
    assert media.path is not None
    media.path.write_bytes(b"CABM1\n" + media.path.read_bytes()[len(media_files.MAGIC):])
    assert load_media(SMALL, tmp_path).generated


def test_unsupported_layer_counts_are_refused() -> None:
    with pytest.raises(ValueError, match=r"temporal_layers must be one of \(1, 3\), not 2"):
        MediaParams(temporal_layers=2)
    assert "ts_target_bitrate=200,300,500:" in media_files.ts_parameters(MediaParams())
    assert media_files.ts_parameters(MediaParams()).endswith(":ts_layering_mode=3")


def test_a_receiver_can_go_up_a_layer_at_every_layer_sync_frame(media: media_files.PreEncodedMedia) -> None:
    """What the SFU does when a subscriber's link recovers: after the frames of TID <= ``below``
    only, it forwards a layer-sync frame of a higher layer; that frame decodes to its picture."""
    full = [_planes(f) for f in _pictures("libvpx", media.video)]
    tids, sync = media.temporal_ids, media.layer_sync
    switches = 0
    for below in (0, 1):
        for i in (i for i in range(1, len(tids)) if sync[i] and tids[i] > below):
            before = [media.video[j] for j in range(i) if tids[j] <= below]
            pictures = _pictures("libvpx", before + [media.video[i]])
            assert _planes(pictures[-1]) == full[i], (below, i)
            switches += 1
    assert switches == 15 + 15 + 15  # from TL0 at the TL1 and TL2 sync frames, from TL0+TL1 at the TL2 ones
