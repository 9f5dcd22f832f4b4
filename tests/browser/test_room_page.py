"""The participant's meeting room in real headless Chromium against a real server on loopback.

Fake camera and microphone (Chromium's test devices), WebRTC through the SFU on 127.0.0.1, socket.io
signaling, and the page's own controls clicked or pressed as a person would. Screenshots of what a
participant sees are saved under test-artifacts/browser/.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from browser_harness import (
    CONNECTION_TESTED,
    CABINET_SESSION,
    TABLET,
    Participant,
    close_all,
    join,
    new_participant,
    open_room,
    pass_prejoin,
    until,
    wait_for_media,
    wait_for_stage_media,
    wait_for_video,
)
from playwright.async_api import Browser, Route, expect

from harness import LiveServer
from meetings.policy import Caller

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


#: The stage names the participant it shows, whose tile is marked as on the stage.
STAGE_NAMED = """(() => {
  const room = window.cabinetRoom;
  const shown = room.participants.get(room.stageId);
  const strong = document.querySelector('#stage-name strong');
  const tile = document.querySelector('#thumbs li[data-participant-id="' + room.stageId + '"]');
  return Boolean(shown && strong && strong.textContent === shown.info.full_name && tile
    && tile.classList.contains('on-stage'));
})()"""


def no_page_errors(*participants: Participant) -> None:
    for p in participants:
        assert p.errors == [], f"{p.username}: uncaught errors in the page: {p.errors}"


async def test_three_sites_see_and_hear_each_other(server: LiveServer, browser: Browser) -> None:
    people: list[Participant] = []
    try:
        secretariat = await new_participant(browser, server.url, "secretariat")
        people.append(secretariat)
        await open_room(secretariat, CABINET_SESSION)
        page = secretariat.page
        # The pre-join check: devices listed, own preview playing, the microphone meter moving,
        # and a connection test that reports a round trip.
        await expect(page.locator("#camera-select option")).not_to_have_count(0)
        await expect(page.locator("#mic-select option")).not_to_have_count(0)
        await until(page, "document.getElementById('preview').videoWidth > 0")
        await page.click("#prejoin-title")  # a gesture: browsers start WebAudio only after one
        await until(page, "document.getElementById('mic-level').value > 0.05", timeout=10)
        await page.wait_for_selector(CONNECTION_TESTED)
        assert "round trip" in (await page.text_content("#conn-result") or "")
        await secretariat.screenshot("prejoin-laptop")
        await pass_prejoin(secretariat)

        governor = await join(browser, server.url, "governor", CABINET_SESSION)
        people.append(governor)
        governor2 = await join(browser, server.url, "governor2", CABINET_SESSION, viewport=TABLET)
        people.append(governor2)

        ids = {p.username: await p.participant_id() for p in people}
        for receiver in people:
            # Everyone else's video, on the stage or in a thumbnail slot; the stage's sound too.
            for sender in people:
                if sender is not receiver:
                    media = await wait_for_video(receiver, ids[sender.username])
                    assert media["width"] > 0
            on_stage = await until(receiver.page, "window.cabinetRoom.stageId")
            assert on_stage in ids.values() and on_stage != ids[receiver.username]
            await wait_for_stage_media(receiver)

        # Each page shows a tile for each of the other two plus its own view, one of them on the stage
        # (named there) and the other one's video in its tile.
        for p in people:
            await expect(p.page.locator("#thumbs li.tile")).to_have_count(3)
            await expect(p.page.locator("#thumbs li.self")).to_have_count(1)
            await expect(p.page.locator("#roster > li")).to_have_count(3)
            await until(p.page, "document.getElementById('stage').dataset.empty === 'false'")
            await until(p.page, "document.getElementById('stage-video').videoWidth > 0")
            # (read at one instant: the stage follows the dominant speaker among the three beeping
            # fake microphones)
            await until(p.page, STAGE_NAMED)
            await expect(p.page.locator('#thumbs li.tile[data-video="on"]:not(.self)')).to_have_count(1)
            await until(p.page, "Array.from(document.querySelectorAll('#thumbs li[data-video=\"on\"] video.slot-video'))"
                        ".every(v => v.videoWidth > 0)")
            # Remote sound plays through one unmuted <audio> element per audio slot (the stage's and
            # two extra voices).
            assert await p.page.evaluate(
                "Array.from(document.querySelectorAll('#audio-sink audio')).filter(a => !a.muted && !a.paused"
                " && a.srcObject && a.dataset.slotId).length") == 3
        # Connection quality arrives for every site (own sample locally, others through the server).
        await until(secretariat.page,
                    "document.querySelectorAll('#roster .quality:not([data-level=\"unknown\"])').length === 3",
                    timeout=20)
        await secretariat.screenshot("session-laptop")
        await governor2.screenshot("session-tablet")
        no_page_errors(*people)
    finally:
        await close_all(people)


async def test_mute_is_seen_by_others_and_a_server_mute_shows_on_the_page(server: LiveServer,
                                                                           browser: Browser) -> None:
    people: list[Participant] = []
    try:
        secretariat = await join(browser, server.url, "secretariat", CABINET_SESSION)
        people.append(secretariat)
        governor = await join(browser, server.url, "governor", CABINET_SESSION)
        people.append(governor)
        gid = await governor.participant_id()
        await wait_for_media(secretariat, gid)
        tile = secretariat.page.locator(f'#thumbs li[data-participant-id="{gid}"]')
        roster = secretariat.page.locator(f'#roster li[data-participant-id="{gid}"]')

        mic = governor.page.locator("#mic-button")
        await mic.click()
        await expect(mic).to_have_attribute("aria-pressed", "true")
        assert await governor.page.evaluate("window.cabinetRoom.local.audio.enabled") is False
        await expect(tile.locator(".tile-muted")).to_be_visible()
        await expect(roster.locator(".muted-pill")).to_be_visible()

        # Unmute with the keyboard: the control is a focusable button.
        await mic.focus()
        await governor.page.keyboard.press("Enter")
        await expect(mic).to_have_attribute("aria-pressed", "false")
        await expect(tile.locator(".tile-muted")).to_be_hidden()
        await expect(roster.locator(".muted-pill")).to_have_count(0)

        # The only other site is on the secretariat's stage (its tile says so and shows the name card).
        stage = secretariat.page.locator("#stage")
        await expect(stage).to_have_attribute("data-participant-id", gid)
        await expect(stage).to_have_attribute("data-empty", "false")
        await expect(tile).to_have_attribute("data-video", "off")

        # Camera off: the others see a name card instead of video, and the camera is released.
        camera = governor.page.locator("#camera-button")
        await camera.click()
        await expect(camera).to_have_attribute("aria-pressed", "true")
        await expect(stage).to_have_attribute("data-empty", "true")
        await expect(stage).to_have_attribute("data-participant-id", gid)  # still there, by voice
        await expect(secretariat.page.locator("#stage-placeholder")).to_have_text("KS")
        assert await governor.page.evaluate("window.cabinetRoom.local.video") is None
        await camera.click()
        await expect(camera).to_have_attribute("aria-pressed", "false")
        await expect(stage).to_have_attribute("data-empty", "false")
        await wait_for_media(secretariat, gid)

        # Audio only on the secretariat's page (the site's choice, a radio group): video stops arriving,
        # sound goes on.
        choice = secretariat.page.locator("#session-quality")
        await choice.locator("label", has_text="Audio only").click()
        await expect(choice.get_by_role("radio", name="Audio only")).to_be_checked()
        await expect(stage).to_have_attribute("data-empty", "true")
        await asyncio.sleep(1.5)
        before = await secretariat.state()
        await asyncio.sleep(2)
        after = await secretariat.state()

        def packets(state: dict, kind: str) -> int:
            # By slot kind: an emptied video slot names nobody, whatever still trickles into it counts.
            return sum(s["packetsReceived"] for s in state["inbound"] if s["kind"] == kind
                       and (kind == "video" or s["participantId"] == gid))

        assert packets(after, "video") - packets(before, "video") < 5
        # Sound goes on: 50 more audio packets (one second of Opus), however long a busy machine takes.
        for _ in range(50):
            if packets(after, "audio") - packets(before, "audio") > 50:
                break
            await asyncio.sleep(0.2)
            after = await secretariat.state()
        assert packets(after, "audio") - packets(before, "audio") > 50
        await choice.locator("label", has_text="Automatic").click()
        await expect(choice.get_by_role("radio", name="Automatic")).to_be_checked()
        await expect(stage).to_have_attribute("data-empty", "false")
        await expect(secretariat.page.locator("#stage-name strong")).to_have_text("Keo Sreymom (Governor of Siem Reap)")

        # A moderator's mute (the secretariat moderates cabinet sessions) shows on the governor's page.
        reply = await secretariat.page.evaluate(
            "id => window.cabinetRoom.signal.call('moderate', {action: 'mute', participant_id: id})", gid)
        if reply.get("ok"):
            await expect(mic).to_have_attribute("aria-pressed", "true")
            await expect(mic).to_be_disabled()
            assert await governor.page.evaluate("window.cabinetRoom.local.audio.enabled") is False
            await expect(governor.page.locator("#room-status")).to_contain_text("muted")
            await governor.screenshot("session-muted-by-chair")
            # The mute binds the person until lifted (restarts included): lift it for the module's next tests.
            reply = await secretariat.page.evaluate(
                "id => window.cabinetRoom.signal.call('moderate', {action: 'unmute', participant_id: id})", gid)
            assert reply["ok"], reply
            await expect(mic).to_be_enabled()
        else:
            assert reply["error"]["code"] == "invalid", reply  # a server without moderation

        # Raise hand: the queue shows on the other page (or, on a server without hands, nothing breaks).
        await governor.page.click("#hand-button")
        await expect(secretariat.page.locator("#hands-list li")).to_have_count(1)
        await expect(tile.locator(".tile-hand")).to_be_visible()
        await expect(governor.page.locator("#hand-button")).to_have_attribute("aria-pressed", "true")
        no_page_errors(*people)
    finally:
        await close_all(people)


async def test_an_uninvited_account_is_refused_without_media(server: LiveServer, browser: Browser) -> None:
    people: list[Participant] = []
    try:
        commander = await new_participant(browser, server.url, "commander")
        people.append(commander)
        # The commander cannot see the cabinet session at all; find its id the way a guesser would.
        services = server.services()
        try:
            meetings = await services.meetings.list_visible(Caller.cli())
            session = next(m for m in meetings if m.title == CABINET_SESSION)
        finally:
            await services.db.dispose()
        page = commander.page
        response = await page.goto(f"{server.url}/meetings/{session.id}/room")
        assert response is not None and response.status == 404
        await expect(page.locator("#room-refused [role=alert]")).to_have_text(
            "This meeting does not exist or you are not invited to it.")
        await asyncio.sleep(1.0)
        assert await page.locator("script").count() == 0
        assert not any("/socket.io/" in url or "join-token" in url for url in commander.requests), commander.requests
        assert await page.evaluate("typeof window.cabinetRoom") == "undefined"
        await commander.screenshot("refused")
        # The API agrees: no join token for an uninvited account.
        status = await page.evaluate(
            "id => fetch('/api/meetings/' + id + '/join-token', {method: 'POST', headers: {'X-CSRF-Token': 'x'}})"
            ".then(r => r.status)", session.id)
        assert status in (403, 404)
    finally:
        await close_all(people)


async def test_a_page_reconnects_by_itself_after_a_network_drop(server: LiveServer, browser: Browser) -> None:
    people: list[Participant] = []
    try:
        secretariat = await join(browser, server.url, "secretariat", CABINET_SESSION)
        people.append(secretariat)
        governor = await join(browser, server.url, "governor", CABINET_SESSION)
        people.append(governor)
        old_id = await governor.participant_id()
        await wait_for_media(secretariat, old_id)
        banner = governor.page.locator("#banner")
        await expect(banner).to_be_hidden()

        await governor.context.set_offline(True)
        await expect(banner).to_be_visible(timeout=8_000)
        await governor.screenshot("reconnecting")
        await asyncio.sleep(4)
        await governor.context.set_offline(False)
        started = time.monotonic()
        await expect(banner).to_be_hidden(timeout=30_000)
        reconnect_s = time.monotonic() - started

        state = await governor.state()
        assert state["phase"] == "joined" and state["reconnects"] == 1
        new_id = state["participantId"]
        assert new_id != old_id
        # Video and sound flow again, both ways, with the new connection.
        await wait_for_media(secretariat, new_id)
        await wait_for_media(governor, await secretariat.participant_id())
        await expect(secretariat.page.locator("#roster > li")).to_have_count(2)
        await expect(governor.page.locator("#thumbs li.tile")).to_have_count(2)
        assert reconnect_s < 20, reconnect_s
        no_page_errors(*people)
    finally:
        await close_all(people)


async def test_lobby_admission_and_removal_are_shown(server: LiveServer, browser: Browser) -> None:
    """With the lobby on, a delegate waits until a moderator lets them in; a removal ends their session."""
    people: list[Participant] = []
    try:
        secretariat = await join(browser, server.url, "secretariat", CABINET_SESSION)
        people.append(secretariat)
        call = "args => window.cabinetRoom.signal.call('moderate', args)"
        reply = await secretariat.page.evaluate(call, {"action": "lobby_on"})
        if not reply.get("ok"):
            pytest.skip(f"this server has no lobby: {reply}")
        try:
            governor = await new_participant(browser, server.url, "governor")
            people.append(governor)
            await open_room(governor, CABINET_SESSION)
            await governor.page.wait_for_selector(CONNECTION_TESTED)
            await governor.page.click("#join-button")
            await expect(governor.page.locator("#lobby")).to_be_visible()
            await expect(governor.page.locator("#session")).to_be_hidden()
            gid = await governor.participant_id()
            await governor.screenshot("lobby")
            reply = await secretariat.page.evaluate(call, {"action": "admit", "participant_id": gid})
            assert reply["ok"], reply
            await expect(governor.page.locator("#session")).to_be_visible()
            await expect(governor.page.locator("#lobby")).to_be_hidden()
            await wait_for_media(governor, await secretariat.participant_id())
            await wait_for_media(secretariat, gid)
        finally:
            await secretariat.page.evaluate(call, {"action": "lobby_off"})

        reply = await secretariat.page.evaluate(call, {"action": "remove", "participant_id": gid})
        assert reply["ok"], reply
        await expect(governor.page.locator("#left")).to_be_visible()
        await expect(governor.page.locator("#removed-note")).to_be_visible()
        await asyncio.sleep(2)
        state = await governor.state()
        assert state["phase"] == "removed" and state["reconnects"] == 0
        await expect(governor.page.locator("#banner")).to_be_hidden()
        assert await governor.page.evaluate("window.cabinetRoom.local.video") is None
        await expect(secretariat.page.locator("#roster > li")).to_have_count(1)
        # The removal binds the person until a moderator lifts it (other tests of this module join as them).
        person_id = await governor.page.evaluate("window.cabinetRoom.me.person_id")
        reply = await secretariat.page.evaluate(call, {"action": "readmit", "person_id": person_id})
        assert reply["ok"], reply
        no_page_errors(*people)
    finally:
        await close_all(people)


async def test_a_room_page_whose_script_did_not_arrive_reloads_itself(server: LiveServer, browser: Browser) -> None:
    """A module script that fails to load (Chromium aborts requests in flight with ERR_NETWORK_CHANGED
    when any address of the machine changes) leaves a page that never starts: it reloads itself."""
    people: list[Participant] = []
    try:
        governor = await new_participant(browser, server.url, "governor")
        people.append(governor)
        dropped: list[str] = []

        async def drop_once(route: Route) -> None:
            if not dropped:
                dropped.append(route.request.url)
                await route.abort("failed")
            else:
                await route.continue_()

        await governor.page.route("**/static/js/room-view.js*", drop_once)
        await open_room(governor, CABINET_SESSION)
        await governor.page.wait_for_selector(CONNECTION_TESTED)
        assert len(dropped) == 1
        assert await governor.page.evaluate("window.cabinetRoom.phase") == "prejoin"
        assert governor.errors == []
    finally:
        await close_all(people)
