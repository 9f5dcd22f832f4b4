"""Fixtures of the tests that run bots against a real server: small pre-encoded media and the bots,
stopped at the end whatever happened. Import them into a test module (or a conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bots.bot import Bot, BotOptions
from bots.media_files import MediaParams, PreEncodedMedia, load_media


@pytest.fixture(scope="session")
def small_media(tmp_path_factory: pytest.TempPathFactory) -> PreEncodedMedia:
    """320x180 VP8 at 150 kbit/s, 15 fps, a keyframe at the start of each 2 s loop; Opus."""
    return load_media(MediaParams(width=320, height=180, video_bitrate=150_000, loop_seconds=2.0),
                      tmp_path_factory.mktemp("small-media"))


@pytest.fixture
async def bots() -> AsyncIterator[dict[str, Bot]]:
    made: dict[str, Bot] = {}
    yield made
    await asyncio.gather(*(asyncio.wait_for(bot.stop(), 20) for bot in made.values()), return_exceptions=True)


async def start_publishing_bots(url: str, tokens: dict[str, str], media: PreEncodedMedia, bots: dict[str, Bot],
                                *, speaking: tuple[str, ...] = ()) -> None:
    """One publishing, non-subscribing bot per ``tokens`` entry (name -> join token), in order, each
    joined before the next starts; ``speaking``: the names that send their speech loop."""
    for name, token in tokens.items():
        bots[name] = Bot(BotOptions(url=url, token=token, name=name, subscribe=False, reconnect=False,
                                    speaking=name in speaking, timeout=30), media)
        await asyncio.wait_for(bots[name].start(), 40)
