"""The site budget's allocation: audio first, then the stage, then thumbnails; the ladder down."""

from __future__ import annotations

import pytest

from media.allocation import PAUSED, AudioDemand, VideoDemand, allocate

RATES = (200_000, 320_000, 500_000)
VOICES = [AudioDemand("stage-audio", 45_000, stage=True), AudioDemand("audio-0", 45_000),
          AudioDemand("audio-1", 45_000)]


def videos(thumbs: int = 3) -> list[VideoDemand]:
    return [VideoDemand("stage-video", RATES, stage=True)] + [VideoDemand(f"video-{i}", RATES) for i in range(thumbs)]


def layers(budget: int, **kw: object) -> list[int]:
    got = allocate(budget, VOICES, kw.pop("vids", videos()), **kw)  # type: ignore[arg-type]
    return [got.layers[k] for k in ("stage-video", "video-0", "video-1", "video-2")]


AUDIO = 3 * 45_000


@pytest.mark.parametrize(("budget", "expected"), [
    (AUDIO + 4 * 500_000, [2, 2, 2, 2]),
    (AUDIO + 500_000 + 3 * 320_000, [2, 1, 1, 1]),
    (AUDIO + 500_000 + 3 * 200_000, [2, 0, 0, 0]),          # thumbnails to TL0
    (AUDIO + 500_000 + 2 * 200_000, [2, 0, 0, PAUSED]),     # then off, last-N order
    (AUDIO + 500_000, [2, PAUSED, PAUSED, PAUSED]),
    (AUDIO + 320_000, [1, PAUSED, PAUSED, PAUSED]),         # stage TL1
    (AUDIO + 200_000, [0, PAUSED, PAUSED, PAUSED]),         # stage TL0
    (AUDIO + 100_000, [PAUSED] * 4),                        # video off
])
def test_the_ladder(budget: int, expected: list[int]) -> None:
    assert layers(budget) == expected


def test_audio_comes_first_and_the_stage_voice_is_never_paused() -> None:
    got = allocate(60_000, VOICES, videos())
    assert got.audio == {"stage-audio": True, "audio-0": False, "audio-1": False}
    assert got.states["audio-0"] == "paused_bandwidth"
    assert all(layer == PAUSED for layer in got.layers.values())
    assert allocate(0, VOICES, videos()).audio["stage-audio"] is True


def test_requests_pause_without_costing_and_take_precedence() -> None:
    vids = videos()
    vids[1] = VideoDemand("video-0", RATES, visible=False)
    got = allocate(AUDIO + 500_000 + 2 * 200_000, VOICES, vids)
    assert got.states["video-0"] == "paused_request"
    assert [got.layers[k] for k in ("video-1", "video-2")] == [0, 0], "the hidden tile's share goes to the next"
    low = allocate(10**9, VOICES, videos(), mode="low")
    assert low.layers["stage-video"] == 1 and low.layers["video-0"] == 0
    audio_only = allocate(10**9, VOICES, videos(), mode="audio")
    assert set(audio_only.states[k] for k in audio_only.layers) == {"paused_request"}
    assert all(audio_only.audio.values())
    starved = allocate(AUDIO, VOICES, vids)
    assert starved.states["video-0"] == "paused_request" and starved.states["video-1"] == "paused_bandwidth"


def test_a_stream_without_layers_is_all_or_nothing() -> None:
    got = allocate(AUDIO + 400_000, VOICES, [VideoDemand("stage-video", (450_000,), stage=True)])
    assert got.layers["stage-video"] == PAUSED
    got = allocate(AUDIO + 460_000, VOICES, [VideoDemand("stage-video", (450_000,), stage=True)])
    assert got.layers["stage-video"] == 0 and got.total == AUDIO + 450_000


def test_a_forwarded_layer_is_kept_where_a_paused_one_would_not_start() -> None:
    budget = AUDIO + 190_000  # the stage's TL0 (200 kbit/s) does not fit to start...
    assert layers(budget)[0] == PAUSED
    kept = allocate(budget, VOICES, videos(), current={"stage-video": 0})
    assert kept.layers["stage-video"] == 0 and kept.states["stage-video"] == "active", "...but is kept"
    assert allocate(AUDIO + 160_000, VOICES, videos(), current={"stage-video": 0}).layers["stage-video"] == PAUSED
    moved = allocate(AUDIO + 425_000 + 170_000 + 50_000, VOICES, videos(), current={"stage-video": 2, "video-0": 0})
    assert [moved.layers[k] for k in ("stage-video", "video-0", "video-1")] == [2, 0, PAUSED], \
        "only what is forwarded is cheaper"
    assert moved.next_budget == AUDIO + 425_000 + 170_000 + 200_000, "the next step: video-1 at TL0"


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="choice"):
        allocate(1, VOICES, videos(), mode="hd")  # type: ignore[arg-type]
