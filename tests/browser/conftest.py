"""Fixtures for the real-browser tests: one live server per module, one Chromium per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from browser_harness import CHROMIUM, SECOND_GOVERNOR, launch
from playwright.async_api import Browser, async_playwright

from harness import LiveServer, make_config
from meetings.demo import DEMO_PASSWORD
from meetings.policy import Caller

CLI = Caller.cli()


async def _add_second_governor(server: LiveServer) -> None:
    services = server.services()
    try:
        username, full_name, office_code = SECOND_GOVERNOR
        office = next(o for o in await services.offices.list(CLI) if o.code == office_code)
        await services.people.create(CLI, username=username, full_name=full_name, office_id=office.id,
                                     roles=["delegate"], password=DEMO_PASSWORD)
    finally:
        await services.db.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    config = make_config(tmp_path_factory.mktemp("browser"), **{"media.ice_bind_addresses": ["127.0.0.1"]})
    live = LiveServer(config).start()
    asyncio.run(_add_second_governor(live))
    yield live
    live.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch(playwright)
        try:
            yield chromium
        finally:
            await asyncio.wait_for(chromium.close(), 20)
