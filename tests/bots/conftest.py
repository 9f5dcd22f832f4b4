"""Fixtures for tests/bots: pre-encoded media (generated once per session) and a loopback Router."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bots.media_files import MediaParams, PreEncodedMedia, load_media
from media import MediaConfig, Router

LOOPBACK = ["127.0.0.1"]


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> PreEncodedMedia:
    return load_media(MediaParams(), tmp_path_factory.mktemp("bot-media"))


class Closer:
    """Closes bots' publishers/subscribers (anything with ``async close()``) and the router."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.items: list[object] = []

    def add(self, item: object) -> object:
        self.items.append(item)
        return item

    async def close(self) -> None:
        for item in reversed(self.items):
            await asyncio.wait_for(item.close(), 10)  # type: ignore[attr-defined]
        await asyncio.wait_for(self.router.close(), 10)


@pytest.fixture
async def sfu() -> AsyncIterator[Closer]:
    closer = Closer(Router(MediaConfig(ice_bind_addresses=LOOPBACK), router_id="bots-test"))
    try:
        yield closer
    finally:
        await closer.close()


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {timeout:.1f}s")
        await asyncio.sleep(interval)
