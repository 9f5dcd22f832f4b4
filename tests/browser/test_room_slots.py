"""Slots in real Chromium: the room page's receiving connection is negotiated once, and the server moves
participants between its slots (issue 11; signaling/protocol.py, web/static/js/room-slots.js).

At most three browsers; the other sites are publishing bots (``python -m bots --publish``, one process
each, pre-encoded VP8/Opus: no encoding on this 2-core machine). Screenshots of a twelve-site session are
saved under docs/screenshots/ for the record.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_harness import (
    BOT_SITES,
    CABINET_SESSION,
    CHROMIUM,
    SECOND_GOVERNOR,
    TABLET,
    BotProcesses,
    Participant,
    Sites,
    close_all,
    create_bot_people,
    join,
    pass_prejoin,
    start_server,
    until,
    wait_for_video,
)
from playwright.async_api import Browser, expect

from bots.media_files import MediaParams, load_media
from harness import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
#: Lip sync: the stage's audio and video play within this of each other (ms).
SYNC_MS = 150
#: What a site sees besides the stage (the page's default last-N, 9, is the stage and 8 thumbnails).
THUMBNAILS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Conftest's server without the sites' budgets: nine bots and three browsers on this 2-core machine
    lose packets to their own CPU, and the budget would rightly pause video for it (as in
    tests/bots/test_slots_twelve.py). The budget in a browser is tests/browser/test_room_links.py."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    live = start_server(tmp_path_factory.mktemp("browser"), **{"media.budget_enabled": False})
    yield live
    live.stop()


@pytest.fixture(scope="module")
def sites(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Sites:
    meeting_id = asyncio.run(create_bot_people(server))
    cache_dir = tmp_path_factory.mktemp("bot-media")
    load_media(MediaParams(), cache_dir)  # encoded once here, not by nine bots at the same time
    return Sites(meeting_id, cache_dir, tmp_path_factory.mktemp("bot-logs"))


@pytest.fixture
def bots(server: LiveServer, sites: Sites) -> Iterator[BotProcesses]:
    processes = BotProcesses(server, sites)
    try:
        yield processes
    finally:
        processes.stop()


@pytest.fixture
async def people() -> AsyncIterator[list[Participant]]:
    opened: list[Participant] = []
    try:
        yield opened
    finally:
        await close_all(opened)


async def ids_by_name(viewer: Participant, names: list[str], *, timeout: float = 60.0) -> dict[str, str]:
    """Participant ids of ``names`` as ``viewer``'s page knows them (waits until all have joined)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {p["name"]: p["id"] for p in (await viewer.state())["participants"]}
        if all(n in found for n in names):
            return {n: found[n] for n in names}
        if time.monotonic() > deadline:
            raise AssertionError(f"{viewer.username} does not see {set(names) - set(found)} after {timeout} s")
        await asyncio.sleep(0.5)


def slot(state: dict[str, Any], slot_id: str) -> dict[str, Any]:
    return next(s for s in state["slots"] if s["slotId"] == slot_id)


def inbound(state: dict[str, Any], slot_id: str) -> dict[str, Any] | None:
    return next((s for s in state["inbound"] if s["slotId"] == slot_id), None)


def stage_frames(state: dict[str, Any]) -> int:
    entry = inbound(state, "stage-video")
    return int(entry["framesDecoded"]) if entry else 0


async def call(who: Participant, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    reply = await who.page.evaluate("([e, p]) => window.cabinetRoom.signal.call(e, p)", [event, payload])
    assert reply.get("ok"), (event, payload, reply)
    return reply  # type: ignore[no-any-return]


async def open_session(secretariat: Participant) -> None:
    """Open the session, unless an earlier test of this module did (a closed session ends the meeting:
    nobody could join it any more, so no test closes it)."""
    if await secretariat.page.evaluate("window.cabinetRoom.sessionPanel.session.state") != "open":
        await call(secretariat, "session", {"action": "open"})
    await until(secretariat.page, "window.cabinetRoom.sessionPanel.session.state === 'open'")


async def stage_shows(viewer: Participant, participant_id: str, name: str, *, voice: bool = False,
                      timeout: float = 20.0) -> None:
    """The viewer's stage carries ``participant_id`` (its video slot, named from its first frame) and
    shows their name; ``voice``: their sound too (a voice the floor gate mutes sends nothing, and a slot
    is switched at its new source's first packet)."""
    page = viewer.page
    await until(page, f"window.cabinetRoom.stageId === '{participant_id}'"
                f" && window.cabinetRoom.slots.get('stage-video').shown.participantId === '{participant_id}'",
                timeout=timeout)
    state = await viewer.state()
    assert slot(state, "stage-video")["participantId"] == participant_id, state["slots"]
    if voice:
        await until(page, f"window.cabinetRoom.slots.get('stage-audio').shown.participantId === '{participant_id}'",
                    timeout=timeout)
    await expect(page.locator("#stage-name strong")).to_have_text(name)
    # A stage the site's budget paused for bandwidth shows the name card until the budget steps up
    # again (after 5 s without congestion and a probe: media/site_budget.py).
    await expect(page.locator("#stage")).to_have_attribute("data-empty", "false", timeout=15_000)


async def frames_rise(viewer: Participant, after: int, *, by: int = 10, timeout: float = 15.0) -> int:
    """Wait until the stage video has decoded ``by`` more frames than ``after``; returns the count."""
    deadline = time.monotonic() + timeout
    frames = after
    while time.monotonic() < deadline:
        frames = stage_frames(await viewer.state())
        if frames >= after + by:
            return frames
        await asyncio.sleep(0.3)
    raise AssertionError(f"the stage video of {viewer.username} stalled at {frames} frames (from {after})")


async def playout_skew_ms(viewer: Participant, samples: int = 12, *, settle: float = 15.0) -> list[float]:
    """Stage audio minus stage video estimated playout (sender NTP time of what plays now), in ms, from
    one getStats report at a time; samples whose audio or video has no estimate are skipped.

    Right after a switch the browser's A/V synchronisation is still converging (it moves the delays
    by steps): sampling starts once a sample is within SYNC_MS, or after ``settle`` seconds."""
    out: list[float] = []
    deadline = time.monotonic() + settle
    for _ in range(samples * 3 + int(settle * 4)):
        state = await viewer.state()
        audio, video = inbound(state, "stage-audio"), inbound(state, "stage-video")
        if audio and video and audio["estimatedPlayoutTimestamp"] and video["estimatedPlayoutTimestamp"]:
            skew = audio["estimatedPlayoutTimestamp"] - video["estimatedPlayoutTimestamp"]
            if out or abs(skew) < SYNC_MS or time.monotonic() > deadline:
                out.append(skew)
                if len(out) >= samples:
                    break
        await asyncio.sleep(0.25)
    return out


async def test_the_stage_follows_the_floor_the_spotlight_and_a_pin(
        server: LiveServer, browser: Browser, bots: BotProcesses, people: list[Participant]) -> None:
    bot_names = bots.start(2)
    secretariat = await join(browser, server.url, "secretariat", CABINET_SESSION)
    people.append(secretariat)
    governor = await join(browser, server.url, "governor", CABINET_SESSION)
    people.append(governor)
    ids = await ids_by_name(governor, bot_names)
    a, b = (ids[n] for n in bot_names)
    await ids_by_name(secretariat, bot_names)
    gid = await governor.participant_id()

    # Every server event the governor's page gets from now on, by name.
    await governor.page.evaluate(
        "window.cabinetRoom.signal.socket.onAny(name => (window.seenEvents = window.seenEvents || []).push(name))")

    # The wrap-around compare of RTP timestamps the page uses to name a switched slot.
    assert await governor.page.evaluate(
        "import('/static/js/room-slots.js').then(m => [m.rtpAtOrAfter(5, 4294967290), m.rtpAtOrAfter(4294967290, 5),"
        " m.rtpAtOrAfter(7, 7), m.rtpAtOrAfter(100, 99)])") == [True, False, True, True]

    # The stage's audio and video are one MediaStream ("stage"): the browser lip-syncs them.
    state = await governor.state()
    assert slot(state, "stage-audio")["streamIds"] == ["stage"] == slot(state, "stage-video")["streamIds"]
    assert [s["slotId"] for s in state["slots"]][:3] == ["stage-audio", "stage-video", "video-0"]

    await open_session(secretariat)
    # The session is recorded from its opening: every participant's page says so.
    for viewer in (governor, secretariat):
        await until(viewer.page, "document.getElementById('recording-indicator').dataset.state === 'recording'"
                    " && !document.getElementById('recording-indicator').hidden")
    # The floor: the holder goes on every stage, named there.
    await call(secretariat, "floor", {"action": "grant", "participant_id": a})
    for viewer in (governor, secretariat):
        await stage_shows(viewer, a, bot_names[0], voice=True)
    frames = await frames_rise(governor, stage_frames(await governor.state()))

    # Lip sync of the stage (a bot's truthful sender reports, translated by the SFU).
    skew_a = await playout_skew_ms(governor)

    await call(secretariat, "floor", {"action": "grant", "participant_id": b})
    for viewer in (governor, secretariat):
        await stage_shows(viewer, b, bot_names[1], voice=True)
    frames = await frames_rise(governor, frames)
    skew_b = await playout_skew_ms(governor)

    # The spotlight (a moderator's control on the tile) beats the floor on everyone's stage.
    spot = secretariat.page.locator(f'#thumbs li[data-participant-id="{a}"] .tile-spot')
    await expect(spot).to_have_attribute("aria-label", f"Spotlight {bot_names[0]} for everyone")
    await spot.click()
    await stage_shows(governor, a, bot_names[0])
    await expect(governor.page.locator("#stage-name .spotlight-pill")).to_be_visible()
    await expect(governor.page.locator(f'#thumbs li[data-participant-id="{a}"] .tile-spotlight')).to_be_visible()
    await expect(governor.page.locator("#room-status")).to_contain_text("in the spotlight")
    await expect(spot).to_have_attribute("data-on", "true")
    frames = await frames_rise(governor, frames)
    # A delegate has no spotlight control.
    await expect(governor.page.locator(f'#thumbs li[data-participant-id="{a}"] .tile-spot')).to_be_hidden()
    await spot.click()  # End the spotlight: the floor holder again
    await stage_shows(governor, b, bot_names[1])
    await expect(governor.page.locator("#stage-name .spotlight-pill")).to_have_count(0)
    frames = await frames_rise(governor, frames)

    # A pin puts someone on one's own stage only; nobody by that id: not_found.
    reply = await governor.page.evaluate("window.cabinetRoom.signal.call('pin', {participant_id: 'p999-nobody'})")
    assert reply["error"]["code"] == "not_found", reply
    pin = governor.page.locator(f'#thumbs li[data-participant-id="{a}"] .tile-pin')
    await expect(pin).to_have_attribute("aria-label", f"Pin {bot_names[0]} to my stage")
    await pin.click()
    await stage_shows(governor, a, bot_names[0])
    await expect(governor.page.locator("#stage-name")).to_contain_text("Pinned to your stage")
    await expect(pin).to_have_attribute("aria-label", f"Unpin {bot_names[0]}")
    assert (await secretariat.state())["stageParticipantId"] == b
    frames = await frames_rise(governor, frames)
    await pin.click()
    await stage_shows(governor, b, bot_names[1])
    frames = await frames_rise(governor, frames)

    # The governor's own video is never in its slots; the others' are in the thumbnails.
    state = await governor.state()
    assert gid not in [s["participantId"] for s in state["slots"]]
    await wait_for_video(governor, a)
    await wait_for_video(secretariat, gid)

    # Every switch of the stage video was named at the first frame of the new source (or at once
    # when the event came after that frame, or when the slot was paused: no frame to wait for, the
    # name card shows), never before.
    switches = slot(state, "stage-video")["switches"]
    assert len(switches) >= 6, switches
    assert {s["how"] for s in switches} <= {"frame", "late", "paused"}, switches
    assert sum(s["how"] == "frame" for s in switches) >= 4, switches
    late = [s for s in switches if s["how"] == "late"]
    waited = sorted(s["waitedMs"] for s in switches if s["how"] == "frame")
    print(f"stage-video switches: {len(switches)}, named at the new source's first frame after "
          f"{waited} ms, late events: {len(late)}")
    print(f"stage playout skew audio - video (ms), bot A: {[round(x) for x in skew_a]}, "
          f"bot B: {[round(x) for x in skew_b]}")
    for skew in (skew_a, skew_b):
        assert len(skew) >= 6, skew
        assert abs(statistics.median(skew)) < SYNC_MS, skew
    # Negotiated once: the server never sent another offer (nor the old last_n event).
    seen = set(await governor.page.evaluate("window.seenEvents"))
    assert "slot" in seen and "spotlight" in seen and not seen & {"offer", "last_n"}, seen
    assert secretariat.errors == [] and governor.errors == []


async def test_a_twelve_site_session_screenshots(server: LiveServer, browser: Browser, bots: BotProcesses,
                                                people: list[Participant]) -> None:
    """Three browsers and nine publishing bots; every page shows the stage and eight thumbnails.

    The session is open and a bot has the floor, as in a real cabinet session: the stage is theirs and
    the thumbnails do not follow every voice (silent bots), so the pictures show a settled page."""
    bot_names = bots.start(len(BOT_SITES), silent=True)
    secretariat = await join(browser, server.url, "secretariat", CABINET_SESSION)
    people.append(secretariat)
    governor = await join(browser, server.url, "governor", CABINET_SESSION, locale="km-KH")
    people.append(governor)
    governor2 = await join(browser, server.url, SECOND_GOVERNOR[0], CABINET_SESSION, viewport=TABLET)
    people.append(governor2)
    ids = await ids_by_name(secretariat, bot_names, timeout=90)
    await open_session(secretariat)
    await call(secretariat, "floor", {"action": "grant", "participant_id": ids[bot_names[0]]})
    for viewer in people:
        await expect(viewer.page.locator("#thumbs li.tile")).to_have_count(12, timeout=60_000)
        await settled(viewer, ids[bot_names[0]])
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await secretariat.page.screenshot(path=str(SCREENSHOTS / "room-12-sites-laptop.png"), full_page=True)
    await governor2.page.screenshot(path=str(SCREENSHOTS / "room-12-sites-tablet.png"), full_page=True)
    await governor.page.goto(governor.page.url.split("?")[0] + "?lang=km")  # the page in Khmer, rejoined
    await pass_prejoin(governor)
    await expect(governor.page.locator("#thumbs li.tile")).to_have_count(12, timeout=60_000)
    await settled(governor, ids[bot_names[0]])
    await governor.page.screenshot(path=str(SCREENSHOTS / "room-12-sites-khmer.png"), full_page=True)
    for viewer in people:
        assert viewer.errors == [], viewer.errors


#: The page is settled: the stage and THUMBNAILS thumbnails carry distinct participants, none waiting for
#: a first frame, each shown tile decoding.
SETTLED = """([holder, thumbs]) => {
  const room = window.cabinetRoom;
  const videos = Array.from(room.slots.values()).filter(s => s.kind === 'video');
  if (videos.some(s => s.pending)) { return false; }
  const carried = videos.map(s => s.shown.participantId).filter(Boolean);
  const tiles = Array.from(document.querySelectorAll('#thumbs li.tile[data-video="on"]:not(.self)'));
  return room.stageId === holder && carried.length === 1 + thumbs && new Set(carried).size === carried.length
    && tiles.length === thumbs && tiles.every(t => {
      const v = t.querySelector('video.slot-video');
      return v && v.videoWidth > 0 && v.readyState >= 2;
    })
    && document.getElementById('stage').dataset.empty === 'false'
    && document.getElementById('stage-video').videoWidth > 0;
}"""


async def settled(viewer: Participant, holder: str, *, timeout: float = 60.0) -> None:
    """Wait until ``viewer``'s page shows ``holder`` on the stage and eight decoding thumbnails (of the
    eleven other sites: the other two show name cards)."""
    deadline = time.monotonic() + timeout
    while not await viewer.page.evaluate(SETTLED, [holder, THUMBNAILS]):
        if time.monotonic() > deadline:
            state = await viewer.state()
            raise AssertionError(f"{viewer.username}'s page did not settle: {state['slots']}; as the server "
                                 f"says: {state['slotStates']}, link {state['ownLink']}; the view reported: {state['viewSent']}")
        await asyncio.sleep(0.3)
