"""Fixtures for tests/recordings: a loopback router and the bots' pre-encoded media."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bots.media_files import MediaParams, PreEncodedMedia, load_media
from media import MediaConfig, Router


@pytest.fixture(scope="session")
def small_media(tmp_path_factory: pytest.TempPathFactory) -> PreEncodedMedia:
    """320x180, 15 fps, a keyframe at the start of each 2 s loop."""
    return load_media(MediaParams(width=320, height=180, video_bitrate=150_000, loop_seconds=2.0),
                      tmp_path_factory.mktemp("recording-media"))


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    router = Router(MediaConfig(ice_bind_addresses=["127.0.0.1"]), router_id="recording-test")
    try:
        yield router
    finally:
        await asyncio.wait_for(router.close(), 10)
