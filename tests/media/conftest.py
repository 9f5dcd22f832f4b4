"""Fixtures for tests/media (helpers live in sfu_harness.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sfu_harness import LOOPBACK, Harness

from media import MediaConfig, Router


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    router = Router(MediaConfig(ice_bind_addresses=LOOPBACK), router_id="test")
    h = Harness(router)
    try:
        yield h
    finally:
        await asyncio.wait_for(h.close(), 10)
