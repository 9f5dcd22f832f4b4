"""The SFU end to end: bots join the real server over socket.io and exchange media through it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bots.bot import Bot, BotOptions
from bots.media_files import MediaParams, PreEncodedMedia, load_media
from bots.report import StreamReport
from harness import LiveServer, make_config
from meetings.policy import Caller

CLI = Caller.cli()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # No site budgets: server and bots share this process (and two cores with the test run), so the bots
    # lose packets to CPU, and a budget answers that by holding thumbnails back (.ci/run: 5 frames in
    # 30 s); what budgets do on a real link is tests/linklab/test_link_matrix.py's.
    config = make_config(tmp_path_factory.mktemp("e2e"), **{"media.ice_bind_addresses": ["127.0.0.1"],
                                                           "media.speaker_switch_ms": 600,
                                                           "media.budget_enabled": False})
    live = LiveServer(config).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> PreEncodedMedia:
    return load_media(MediaParams(), Path(tmp_path_factory.mktemp("bot-media")))


async def token(server: LiveServer, username: str) -> str:
    return await server.join_token(username)


@pytest.fixture
async def bots(server: LiveServer, media: PreEncodedMedia) -> AsyncIterator[list[Bot]]:
    made: list[Bot] = []
    yield made
    for bot in made:
        await bot.stop()


async def start_bot(server: LiveServer, media: PreEncodedMedia, made: list[Bot], username: str, **options: object) -> Bot:
    bot = Bot(BotOptions(url=server.url, token=await token(server, username), name=username, **options), media)  # type: ignore[arg-type]
    made.append(bot)
    await bot.start()
    return bot


def streams_from(bot: Bot, participant_id: str | None) -> dict[str, StreamReport]:
    """The streams of the slots that carry ``participant_id`` now (its stage or thumbnail, its voice)."""
    return {s.kind: s for s in bot.report().streams if s.participant_id == participant_id}


def video_from(bot: Bot, participant_id: str | None) -> StreamReport:
    video = streams_from(bot, participant_id).get("video")
    assert video is not None, f"no slot of {bot.options.name} carries {participant_id}'s video yet"
    return video


async def eventually(check, timeout: float = 20.0, interval: float = 0.25) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)


async def test_three_sites_decode_each_other_and_no_offer_when_one_leaves(
        server: LiveServer, media: PreEncodedMedia, bots: list[Bot]) -> None:
    names = ["secretariat", "chair", "governor"]
    started = [await start_bot(server, media, bots, name) for name in names]
    ids = {bot.options.name: bot.client.participant_id for bot in started}

    def everyone_decodes_everyone() -> None:
        for bot in started:
            for other in started:
                if other is bot:
                    continue
                got = streams_from(bot, other.client.participant_id)
                assert set(got) == {"audio", "video"}, (bot.options.name, other.options.name, got)
                assert got["video"].decoded_frames >= 10, (bot.options.name, got["video"])
                assert got["audio"].decoded_frames >= 25, (bot.options.name, got["audio"])
                assert got["video"].index_mismatches == 0

    await eventually(everyone_decodes_everyone, timeout=30)
    for bot in started:
        for other in started:
            if other is not bot:
                video = streams_from(bot, other.client.participant_id)["video"]
                # Latency is measured from the stamps (a sanity bound, not a speed target: see bench/).
                assert video.latency_ms_p50 is not None and 0 <= video.latency_ms_p50 < 3000
    # The governor leaves: the others see them go and their slots stop naming them, without any new
    # offer (each receiving connection was negotiated once, with its slots).
    secretariat, chair, governor = started
    negotiated = secretariat.subscriber.peer_connection.remoteDescription.sdp  # type: ignore[union-attr]
    await governor.stop()
    bots.remove(governor)

    def gone() -> None:
        assert ids["governor"] not in secretariat.client.roster
        assert ids["governor"] not in secretariat.client.slot_map.values()
        assert not any(t["participant_id"] == ids["governor"] for t in secretariat.client.tracks.values())

    await eventually(gone)
    for bot in (secretariat, chair):
        assert bot.client.events["offer"] == 0 and bot.client.offers_after_join == 0
    assert secretariat.subscriber.peer_connection.remoteDescription.sdp == negotiated  # type: ignore[union-attr]
    # Media between those who stayed keeps flowing (the chair may move to the stage the governor left).
    await eventually(lambda: video_from(secretariat, ids["chair"]))
    before = video_from(secretariat, ids["chair"]).decoded_frames
    await eventually(lambda: _more(video_from(secretariat, ids["chair"]).decoded_frames, before + 10))


def _more(value: int, threshold: int) -> None:
    assert value >= threshold, (value, threshold)


async def test_dominant_speaker_follows_the_bot_that_speaks(server: LiveServer, media: PreEncodedMedia,
                                                            bots: list[Bot]) -> None:
    chair = await start_bot(server, media, bots, "chair", speaking=True, video=False)
    governor = await start_bot(server, media, bots, "governor", speaking=False, video=False)
    observer = await start_bot(server, media, bots, "observer", publish=False, lean=True)

    def dominant_is(bot: Bot) -> None:
        assert observer.client.dominant_speaker == bot.client.participant_id

    await eventually(lambda: dominant_is(chair), timeout=15)
    await chair.set_speaking(False)
    await governor.set_speaking(True)
    await eventually(lambda: dominant_is(governor), timeout=15)
    # A cough (a short burst: 200 ms of audio, counted in packets, not in however long this loop
    # takes to wake up) does not take the stage, not even for a moment.
    changes_before = observer.client.events["dominant_speaker"]
    await chair.speak_for(200)
    await asyncio.sleep(1.5)  # well past the 600 ms window: a switch would have happened by now
    dominant_is(governor)
    assert observer.client.events["dominant_speaker"] == changes_before


async def test_a_new_subscriber_gets_a_keyframe_from_the_publisher(server: LiveServer, media: PreEncodedMedia,
                                                                   bots: list[Bot]) -> None:
    governor = await start_bot(server, media, bots, "governor", subscribe=False)
    await asyncio.sleep(1.0)
    assert governor.publisher is not None
    requests_before = governor.publisher.stats.keyframe_requests
    viewer = await start_bot(server, media, bots, "observer", publish=False)
    await eventually(lambda: _more(governor.publisher.stats.keyframe_requests, requests_before + 1))  # type: ignore[union-attr]
    await eventually(lambda: _more(video_from(viewer, governor.client.participant_id).decoded_frames, 5))


async def test_lean_subscriber_counts_without_decoding_every_frame(server: LiveServer, media: PreEncodedMedia,
                                                                   bots: list[Bot]) -> None:
    chair = await start_bot(server, media, bots, "chair", subscribe=False)
    lean = await start_bot(server, media, bots, "observer", publish=False, lean=True)

    def counted() -> None:
        video = video_from(lean, chair.client.participant_id)
        assert video.frames_received >= 30 and 0 < video.decoded_frames < video.frames_received
        assert video.loss_percent < 1.0 and video.decode_errors == 0

    await eventually(counted, timeout=20)
