"""The archive's playback page in real headless Chromium: a recorded VP8/Opus proceedings file (encoded in
the test, written by the recorder's own WebmWriter) plays, a click on an agenda item lands within a second
of its start, ?t=5 opens near 5 s, the speed control works and a participant's track loads on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_harness import CHROMIUM, close_all, new_participant, until
from playwright.async_api import Browser

from meetings.policy import Caller
from test_archive_web import ArchiveServer, create_recording, start_archive_server

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
CLI = Caller.cli()
PLAYER = "document.getElementById('player')"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArchiveServer]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    live = start_archive_server(tmp_path_factory.mktemp("archive-browser"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def recording(server: ArchiveServer) -> dict[str, Any]:
    async def build() -> dict[str, Any]:
        services = server.services()
        try:
            visible = await services.meetings.list_visible(CLI)
            session = next(m for m in visible if m.kind.value == "cabinet_session" and m.agenda)
            return await create_recording(services, server.config.archive_path, session.id, seconds=12,
                                          items=[(i.id, i.title) for i in session.agenda])
        finally:
            await services.db.dispose()

    return asyncio.run(build())


async def test_the_proceedings_play_and_chapters_seek(server: ArchiveServer, recording: dict[str, Any],
                                                      browser: Browser) -> None:
    chapters = recording["manifest"]["record"]["chapters"]
    assert len(chapters) == 4 and chapters[2]["start_ms"] >= 5000
    viewer = await new_participant(browser, server.url, "governor")
    try:
        page = viewer.page
        await page.goto(f"{server.url}/archive/{recording['id']}")
        await until(page, f"{PLAYER}.readyState >= 1 && {PLAYER}.duration > 10")
        await page.evaluate(f"{PLAYER}.muted = true; {PLAYER}.play()")
        await until(page, f"{PLAYER}.currentTime > 1.0", timeout=20)
        assert not await page.evaluate(f"{PLAYER}.paused")

        # An agenda item: the click lands within a second of its start.
        target = chapters[2]["start_ms"] / 1000
        await page.click("#chapters li:nth-child(3) button.seek")
        await until(page, f"Math.abs({PLAYER}.currentTime - {target}) < 1.0 && !{PLAYER}.seeking", timeout=10)
        at = await page.evaluate(f"{PLAYER}.currentTime")
        assert target - 0.05 <= at <= target + 1.0, at
        await until(page, f"{PLAYER}.currentTime > {target + 0.5}", timeout=10)  # and plays on from there

        # Speed.
        await page.select_option("#speed", "1.5")
        assert await page.evaluate(f"{PLAYER}.playbackRate") == 1.5

        # "Link to this moment" shows an address with ?t=.
        await page.click("#moment-link")
        link = await page.text_content("#moment-output") or ""
        assert f"/archive/{recording['id']}?t=" in link

        # A participant's track, loaded only when asked for.
        requested = [u for u in viewer.requests if "track-001" in u]
        assert requested == []
        await page.click("button.play-track >> nth=0")
        await until(page, f"{PLAYER}.currentSrc.indexOf('track-001') >= 0 && {PLAYER}.readyState >= 1")
        await page.click("#back-to-proceedings")
        await until(page, f"{PLAYER}.currentSrc.indexOf('proceedings.webm') >= 0")

        # ?t=5 opens near 5 s, once the metadata is known.
        await page.goto(f"{server.url}/archive/{recording['id']}?t=5")
        await until(page, f"{PLAYER}.readyState >= 1 && Math.abs({PLAYER}.currentTime - 5) < 0.5", timeout=15)
        await page.evaluate(f"{PLAYER}.muted = true; {PLAYER}.play()")
        await until(page, f"{PLAYER}.currentTime > 5.3", timeout=15)
        assert viewer.errors == [], viewer.errors
    finally:
        await close_all([viewer])


async def test_the_recording_indicator_in_the_room(server: ArchiveServer, recording: dict[str, Any],
                                                   browser: Browser) -> None:
    """The room's header says "● Recording" / "Recording paused (in camera)" from the ``recording`` event
    (the same handler takes the join reply's dict), in English and Khmer."""
    viewer = await new_participant(browser, server.url, "governor")
    try:
        page = viewer.page
        meeting_id = recording["meeting_id"]

        def shows(state: str, text: str) -> str:
            # (Called again until it holds: the page's script catalog arrives a moment after the page.)
            return (f"(window.cabinetRoom.onRecording({{state: '{state}', recording_id: 1, alarm: ''}}),"
                    f" document.getElementById('recording-text').textContent === '{text}')")

        for lang, on, paused in (("en", "Recording", "Recording paused (in camera)"),
                                 ("km", "កំពុងថត", "ការថតបានផ្អាក (ប្រជុំបិទទ្វារ)")):
            await page.goto(f"{server.url}/meetings/{meeting_id}/room?lang={lang}")
            await until(page, "window.cabinetRoom !== undefined")
            assert await page.is_hidden("#recording-indicator")
            await until(page, shows("recording", on))
            assert await page.is_visible("#recording-indicator")
            await until(page, shows("paused", paused))
            assert await page.get_attribute("#recording-indicator", "data-state") == "paused"
            await page.evaluate("window.cabinetRoom.onRecording({state: 'off', recording_id: null, alarm: ''})")
            assert await page.is_hidden("#recording-indicator")
        assert viewer.errors == [], viewer.errors
    finally:
        await close_all([viewer])
