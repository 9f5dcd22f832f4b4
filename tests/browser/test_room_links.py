"""Poor provincial links, the web client's half, in real Chromium (issue 13; signaling/links.py,
web/static/js/room-links.js).

- the page publishes VP8 with three temporal layers (getStats says L1T3);
- the site's choice (auto / low / audio only) is made before joining, remembered on the device,
  sent with the join, and changed during the session: audio only receives no video at all;
- the page tells the server which tiles are seen (set_view): a hidden one is paused on request and
  its packets stop;
- a site whose link is too weak for video (the server's budget forced low through its configuration)
  shows as such in the other sites' participants panel and on the console.

At most two room pages at once (plus, in the last test, the secretariat's console, which has no media);
the other sites are publishing bots (one process each, pre-encoded media).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from browser_harness import (
    ARTIFACTS,
    CABINET_SESSION,
    CHROMIUM,
    CONNECTION_TESTED,
    SECOND_GOVERNOR,
    BotProcesses,
    Participant,
    Sites,
    close_all,
    create_bot_people,
    join,
    new_participant,
    open_room,
    pass_prejoin,
    start_server,
    until,
)
from playwright.async_api import Browser, Page, expect

from bots.media_files import MediaParams, load_media
from harness import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

#: The scalability mode of the page's outbound video, once it encodes (null before).
SCALABILITY = """(async () => {
  const pc = window.cabinetRoom.sendPc;
  if (!pc) { return null; }
  let mode = null;
  (await pc.getStats()).forEach(s => {
    if (s.type === 'outbound-rtp' && s.kind === 'video' && s.scalabilityMode && s.framesEncoded > 0) {
      mode = s.scalabilityMode;
    }
  });
  return mode;
})()"""


def slot_state(slot_id: str, state: str) -> str:
    """The page's last slot_state from the server says ``slot_id`` is in ``state``."""
    return (f"(() => {{ const s = window.cabinetRoom.slotStates['{slot_id}'];"
            f" return Boolean(s && s.state === '{state}'); }})()")


async def frames_received(who: Participant, slot_id: str) -> int:
    state = await who.state()
    return sum(int(s["framesReceived"]) for s in state["inbound"] if s["slotId"] == slot_id)


async def frames_rise(who: Participant, slot_id: str, *, by: int = 10, timeout: float = 20.0) -> None:
    start = await frames_received(who, slot_id)
    deadline = time.monotonic() + timeout
    while await frames_received(who, slot_id) < start + by:
        if time.monotonic() > deadline:
            raise AssertionError(f"{who.username}: no video arrives on {slot_id}: {(await who.state())['inbound']}")
        await asyncio.sleep(0.3)


async def frames_stopped(who: Participant, slot_id: str, *, seconds: float = 3.0) -> tuple[int, int]:
    """Frames received on ``slot_id`` over ``seconds`` (after a second for what was in flight)."""
    await asyncio.sleep(1.0)
    before = await frames_received(who, slot_id)
    await asyncio.sleep(seconds)
    return before, await frames_received(who, slot_id)


async def roster_link(page: Page, participant_id: str) -> str:
    """The link state the participants panel shows for a site ('' before any)."""
    return str(await page.evaluate(
        "id => { const n = document.querySelector('#roster li[data-participant-id=\"' + id + '\"] .link-state');"
        " return n ? n.dataset.linkState : ''; }", participant_id))


def no_page_errors(*participants: Participant) -> None:
    for p in participants:
        assert p.errors == [], f"{p.username}: uncaught errors in the page: {p.errors}"


@pytest.fixture
async def people() -> AsyncIterator[list[Participant]]:
    opened: list[Participant] = []
    try:
        yield opened
    finally:
        await close_all(opened)


async def test_l1t3_and_the_audio_only_choice_is_remembered_and_obeyed(
        server: LiveServer, browser: Browser, people: list[Participant]) -> None:
    secretariat = await join(browser, server.url, "secretariat", CABINET_SESSION)
    people.append(secretariat)
    # (a) VP8 with three temporal layers: the server can thin a site's video to 15 or 7.5 frames/s.
    assert await until(secretariat.page, SCALABILITY, timeout=20) == "L1T3"

    # (b) Audio only, chosen before joining: remembered on this device across a reload.
    governor = await new_participant(browser, server.url, "governor")
    people.append(governor)
    await open_room(governor, CABINET_SESSION)
    page = governor.page
    await page.wait_for_selector(CONNECTION_TESTED)  # the page's script runs (the pre-join shows before)
    await expect(page.locator("#prejoin-quality input[value=auto]")).to_be_checked()  # the default
    await page.locator("#prejoin-quality input[value=audio]").check()
    assert await page.evaluate("localStorage.getItem('cabinet.quality')") == "audio"
    await page.reload()
    await page.wait_for_selector(CONNECTION_TESTED)
    await expect(page.locator("#prejoin-quality input[value=audio]")).to_be_checked()
    await pass_prejoin(governor)
    await expect(page.locator("#session-quality input[value=audio]")).to_be_checked()
    state = await governor.state()
    assert state["quality"] == "audio" and state["audioOnly"] is True
    assert state["cameraOff"] is True  # audio only spares the uplink too

    # The server was told with the join: every video slot is paused on request, no video arrives.
    await until(page, slot_state("stage-video", "paused_request"), timeout=20)
    state = await governor.state()
    videos = {s["slotId"] for s in state["slots"] if s["kind"] == "video"}
    assert {state["slotStates"][v]["state"] for v in videos} <= {"paused_request", "empty"}, state["slotStates"]
    assert state["slotStates"]["stage-video"]["layer"] == -1
    before, after = await frames_stopped(governor, "stage-video")
    assert after == before, (before, after)
    await expect(page.locator("#stage")).to_have_attribute("data-empty", "true")
    await expect(page.locator("#stage-paused")).to_be_hidden()  # nothing alarming: it was chosen
    await expect(page.locator("#stage-name .pill")).to_have_text("Audio only")
    gid = await governor.participant_id()
    # Every site sees the governor's choice in its participants panel (the `links` event).
    await until(secretariat.page, f"document.querySelector('#roster li[data-participant-id=\"{gid}\"]"
                " .link-state[data-link-state=\"audio_only\"]')", timeout=20)

    # Back to automatic during the session: video comes back, and so does the camera.
    await page.locator("#session-quality label", has_text="Automatic").click()
    await expect(page.locator("#session-quality input[value=auto]")).to_be_checked()
    assert await page.evaluate("localStorage.getItem('cabinet.quality')") == "auto"
    await until(page, slot_state("stage-video", "active"), timeout=20)
    await frames_rise(governor, "stage-video")
    await expect(page.locator("#stage")).to_have_attribute("data-empty", "false")
    assert (await governor.state())["cameraOff"] is False
    # The own link indicator: the estimate and the loss the server measures for this site.
    await expect(page.locator("#own-link")).to_contain_text("kbit/s")
    no_page_errors(*people)


# -- hidden tiles ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sites(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Sites:
    meeting_id = asyncio.run(create_bot_people(server))
    cache_dir = tmp_path_factory.mktemp("bot-media")
    load_media(MediaParams(), cache_dir)
    return Sites(meeting_id, cache_dir, tmp_path_factory.mktemp("bot-logs"))


@pytest.fixture
def bots(server: LiveServer, sites: Sites) -> Iterator[BotProcesses]:
    processes = BotProcesses(server, sites)
    try:
        yield processes
    finally:
        processes.stop()


#: The thumbnail slot video-0 shows someone's decoding video in their tile.
THUMBNAIL_PLAYING = """(() => {
  const tile = document.querySelector('#thumbs li.tile[data-slot-id="video-0"][data-video="on"]');
  const video = tile && tile.querySelector('video.slot-video');
  return Boolean(video && video.videoWidth > 0);
})()"""


def view_of(slot_id: str, visible: bool) -> str:
    """The page's last set_view reported ``slot_id`` (in)visible."""
    flag = "true" if visible else "false"
    return (f"(() => {{ const v = JSON.parse(window.cabinetRoom.viewSent || 'null');"
            f" return Boolean(v && v['{slot_id}'] && v['{slot_id}'].visible === {flag}); }})()")


async def test_a_hidden_tile_is_not_sent(server: LiveServer, browser: Browser, bots: BotProcesses,
                                         people: list[Participant]) -> None:
    bots.start(2, silent=True)
    governor = await join(browser, server.url, "governor", CABINET_SESSION)
    people.append(governor)
    page = governor.page
    await until(page, THUMBNAIL_PLAYING, timeout=60)
    await until(page, view_of("video-0", True))
    sent = (await governor.state())["viewSent"]
    assert sent["video-0"]["width"] > 0 and sent["video-0"]["height"] > 0, sent
    assert sent["stage-video"]["visible"] is True, sent
    await until(page, slot_state("video-0", "active"))

    # Hide the thumbnails: the page says so, the server pauses the slot on request, packets stop.
    thumbs_button = page.locator("#thumbs-button")
    await thumbs_button.click()
    await expect(thumbs_button).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#thumbs")).to_be_hidden()
    await until(page, view_of("video-0", False))
    await until(page, slot_state("video-0", "paused_request"))
    assert (await governor.state())["slotStates"]["stage-video"]["state"] == "active"
    before, after = await frames_stopped(governor, "video-0")
    assert after - before <= 1, (before, after)
    await frames_rise(governor, "stage-video")  # the stage goes on

    # Shown again: the slot comes back.
    await thumbs_button.click()
    await expect(thumbs_button).to_have_attribute("aria-pressed", "false")
    await until(page, view_of("video-0", True))
    await until(page, slot_state("video-0", "active"), timeout=20)
    await frames_rise(governor, "video-0")

    # Scrolled off: in a small window (one column: stage, controls, panels) scrolled down to the
    # participants, the thumbnails are above the fold.
    await page.set_viewport_size({"width": 800, "height": 480})
    await page.locator("#roster").scroll_into_view_if_needed()
    await page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    assert await page.evaluate("document.getElementById('thumbs').getBoundingClientRect().bottom <= 0")
    await until(page, view_of("video-0", False))
    await until(page, slot_state("video-0", "paused_request"))
    await page.locator("#thumbs").scroll_into_view_if_needed()
    await until(page, view_of("video-0", True))
    await until(page, slot_state("video-0", "active"), timeout=20)
    no_page_errors(*people)


# -- a weak site, as the others see it --------------------------------------------------------------

@pytest.fixture(scope="module")
def weak_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose sites' budgets start at the floor and spend a tenth of their estimate: audio
    passes, video never fits (the loss-based estimate grows only to 1.5 times what is sent, and no
    probe is tried while more would not fit), so every site is 'weak' for real."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    live = start_server(tmp_path_factory.mktemp("weak"), **{"media.budget_start_kbps": 30, "media.budget_share": 0.1})
    yield live
    live.stop()


async def open_console(participant: Participant) -> Page:
    page = participant.page
    await page.get_by_role("link", name=CABINET_SESSION).first.click()
    await page.click("#open-console")
    await page.wait_for_selector("#board")
    await until(page, "document.getElementById('console').dataset.connection === 'live'")
    return page


async def test_the_participants_panel_and_the_console_show_a_weak_site(
        weak_server: LiveServer, browser: Browser, people: list[Participant]) -> None:
    governor = await join(browser, weak_server.url, "governor", CABINET_SESSION)
    people.append(governor)
    governor2 = await join(browser, weak_server.url, SECOND_GOVERNOR[0], CABINET_SESSION)
    people.append(governor2)
    g2 = await governor2.participant_id()
    page = governor.page

    # The governor's own slots: the stage (governor 2's camera) is paused for want of bandwidth,
    # and the page says so over the stage; the sound goes on.
    await until(page, slot_state("stage-video", "paused_bandwidth"), timeout=30)
    await expect(page.locator("#stage-paused")).to_have_text("Video paused: weak link")
    await expect(page.locator("#stage")).to_have_attribute("data-empty", "true")
    await expect(page.locator("#stage-paused")).to_have_attribute("aria-live", "polite")
    await until(page, slot_state("stage-audio", "active"))

    # The participants panel: governor 2's site is weak (the `links` event), with its figures; so is
    # this one (the event comes at most every 3 s: wait for the one that says both).
    gid = await governor.participant_id()
    for site in (g2, gid):
        await until(page, f"window.cabinetRoom.links['{site}'] && window.cabinetRoom.links['{site}'].state === 'weak'",
                    timeout=30)
    entry = page.locator(f'#roster li[data-participant-id="{g2}"] .link-state')
    await expect(entry).to_have_attribute("data-link-state", "weak")
    await expect(entry).to_contain_text("Video paused: weak link")
    await expect(entry).to_contain_text("kbit/s")
    await expect(entry).to_contain_text("loss")
    assert await roster_link(page, gid) == "weak"
    await page.evaluate("window.scrollTo(0, 0)")
    await governor.screenshot("room-weak-link")  # the stage's notice, the panel beside it
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    panel = page.locator("section.panel:has(#roster)")
    await panel.screenshot(path=str(ARTIFACTS / "room-participants-weak-site.png"))

    # The secretariat's console shows the same per site.
    secretariat = await new_participant(browser, weak_server.url, "secretariat")
    people.append(secretariat)
    console = await open_console(secretariat)
    row = console.locator(f'#board tr.person[data-participant-id="{g2}"] .link-state')
    await expect(row).to_have_attribute("data-link-state", "weak", timeout=15_000)
    await expect(row).to_contain_text("Video paused: weak link")
    await secretariat.screenshot("console-weak-site")

    # Governor 2 chooses audio only: every panel says so.
    await governor2.page.locator("#session-quality label", has_text="Audio only").click()
    await until(page, f"window.cabinetRoom.links['{g2}'].state === 'audio_only'", timeout=20)
    assert await roster_link(page, g2) == "audio_only"
    await expect(row).to_have_attribute("data-link-state", "audio_only", timeout=15_000)
    no_page_errors(governor, governor2)
    assert secretariat.errors == [], secretariat.errors
