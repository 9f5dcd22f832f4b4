"""The moderators' console in real headless Chromium against a real server on loopback.

The secretariat runs the cabinet session from its console while two governors take part from the
meeting room page: the board shows who has joined, who has not, who dropped, with their connection
quality; raised hands arrive in order; a mute from the console is enforced by the server (the other
governor stops receiving sound); the current agenda item reaches the governors; lock refuses a new
join; the lobby admits; a removal ends a session. Screenshots of the console are saved under
test-artifacts/browser/.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from browser_harness import (
    CABINET_SESSION,
    CONNECTION_TESTED,
    SECOND_GOVERNOR,
    TABLET,
    Participant,
    close_all,
    join,
    new_participant,
    open_room,
    until,
    wait_for_media,
)
from playwright.async_api import Browser, Page, expect

from harness import LiveServer
from meetings.policy import Caller

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(360)]

LIVE = "document.getElementById('console').dataset.connection === 'live'"


async def open_console(participant: Participant) -> Page:
    """From the home page to the meeting's page, then its Console link, as the secretariat would."""
    page = participant.page
    await page.get_by_role("link", name=CABINET_SESSION).first.click()
    await page.click("#open-console")
    await page.wait_for_selector("#board")
    await until(page, LIVE)
    return page


async def console_state(page: Page) -> dict[str, Any]:
    return await page.evaluate("window.cabinetConsole.debugState()")  # type: ignore[no-any-return]


async def person_of(page: Page, participant_id: str) -> int:
    state = await until(page, f"window.cabinetConsole.debugState().participants.find(p => p.id === '{participant_id}')")
    return int(state["personId"])


async def audio_from(receiver: Participant, sender_id: str) -> dict[str, float]:
    state = await receiver.state()
    out = {"packets": 0.0, "energy": 0.0, "frames": 0.0}
    for s in state["inbound"]:
        if s["participantId"] == sender_id:
            if s["kind"] == "audio":
                out["packets"] += s["packetsReceived"]
                out["energy"] += s["totalAudioEnergy"]
            else:
                out["frames"] += s["framesDecoded"]
    return out


def no_page_errors(*participants: Participant) -> None:
    for p in participants:
        assert p.errors == [], f"{p.username}: uncaught errors in the page: {p.errors}"


async def test_the_secretariat_runs_a_session_from_the_console(server: LiveServer, browser: Browser) -> None:
    people: list[Participant] = []
    page: Page | None = None
    try:
        secretariat = await new_participant(browser, server.url, "secretariat")
        people.append(secretariat)
        page = await open_console(secretariat)
        # Every invited site is listed before anyone joins; none of the governors has joined yet.
        assert await page.locator("#board tbody.site").count() > 20
        await expect(page.locator("#board tbody.site[data-site-status='absent']").first).to_be_visible()
        assert "not yet joined" in (await page.text_content("#board-summary") or "")
        # No camera or microphone is opened by the console, and it publishes nothing.
        assert await page.evaluate("typeof window.cabinetRoom") == "undefined"

        governor = await join(browser, server.url, "governor", CABINET_SESSION)
        people.append(governor)
        governor2 = await join(browser, server.url, SECOND_GOVERNOR[0], CABINET_SESSION, viewport=TABLET)
        people.append(governor2)
        g1, g2 = await governor.participant_id(), await governor2.participant_id()
        p1, p2 = await person_of(page, g1), await person_of(page, g2)
        row1 = page.locator(f'#board tr[data-person-id="{p1}"]')
        row2 = page.locator(f'#board tr[data-person-id="{p2}"]')
        for row in (row1, row2):
            await expect(row.locator(".status")).to_have_attribute("data-status", "joined")
        # Sites that have not joined are still on the board, as not yet joined.
        assert await page.locator("#board tbody.site[data-site-status='absent']").count() > 10
        await expect(page.locator("#board tbody.site[data-site-status='joined']")).to_have_count(3)  # + OCM
        # Connection quality as each site reports it, coloured by level.
        for row in (row1, row2):
            await expect(row.locator(".quality")).to_have_attribute("data-level", "good", timeout=20_000)
            await expect(row.locator(".quality")).to_contain_text("kbit/s", timeout=20_000)
        await secretariat.screenshot("console-laptop")

        # Raised hands, in the order they were raised; the console can lower one.
        await governor2.page.click("#hand-button")
        await expect(page.locator("#hands-list li")).to_have_count(1)
        await governor.page.click("#hand-button")
        await expect(page.locator("#hands-list li")).to_have_count(2)
        order = await page.eval_on_selector_all("#hands-list li", "items => items.map(i => i.dataset.participantId)")
        assert order == [g2, g1]
        await expect(row2.locator(".hand-pill")).to_have_text("Hand raised (1)")
        await expect(row1.locator(".hand-pill")).to_have_text("Hand raised (2)")
        await secretariat.screenshot("console-hands")
        await page.click(f'#hands-list li[data-participant-id="{g2}"] button')
        await expect(page.locator("#hands-list li")).to_have_count(1)
        await expect(governor2.page.locator("#hand-button")).to_have_attribute("aria-pressed", "false")

        # A mute from the console: enforced by the server, shown on the governor's page, and the
        # other governor stops receiving that governor's sound (while video keeps coming).
        await wait_for_media(governor2, g1)
        start = await audio_from(governor2, g1)
        await asyncio.sleep(2.5)
        sounding = await audio_from(governor2, g1)
        heard = sounding["energy"] - start["energy"]
        assert heard > 0, (start, sounding)
        await row1.get_by_role("button", name="Mute").click()
        mic = governor.page.locator("#mic-button")
        await expect(mic).to_have_attribute("aria-pressed", "true")
        await expect(mic).to_be_disabled()
        await expect(governor.page.locator("#room-status")).to_contain_text("muted")
        await expect(row1.locator(".mic")).to_have_text("Muted by a moderator")
        await asyncio.sleep(1.0)
        before = await audio_from(governor2, g1)
        await asyncio.sleep(2.5)
        after = await audio_from(governor2, g1)
        assert after["packets"] - before["packets"] < 5, (before, after)
        # The receiver's concealment may add a trace of energy as its jitter buffer drains; what
        # matters is that nothing like the sound it heard over the same span before the mute arrives.
        assert after["energy"] - before["energy"] < heard / 100, (heard, before, after)
        assert after["frames"] > before["frames"], (before, after)
        await secretariat.screenshot("console-muted")
        await row1.get_by_role("button", name=re.compile("^Allow .* to speak$")).click()
        await expect(mic).to_be_enabled()
        await expect(row1.locator(".mic")).not_to_have_text("Muted by a moderator")

        # The current agenda item, set from the console, shows on the governors' pages.
        second = page.locator("#agenda-list li").nth(1)
        title = await second.locator(".agenda-title").text_content() or ""
        await second.get_by_role("button").click()
        # The acknowledgement waits for the database write and the broadcast to every page.
        await expect(second).to_have_attribute("aria-current", "step", timeout=15_000)
        for p in (governor, governor2):
            await expect(p.page.locator("#agenda-list li.current")).to_contain_text(title)
            await expect(p.page.locator("#agenda-current")).to_contain_text(title)

        # A governor whose network goes away shows as dropped.
        await governor2.context.set_offline(True)
        await expect(row2.locator(".status")).to_have_attribute("data-status", "dropped", timeout=50_000)
        await expect(row2.locator(".quality")).to_be_hidden()
        await expect(row1.locator(".status")).to_have_attribute("data-status", "joined")
        await row2.scroll_into_view_if_needed()
        await secretariat.screenshot("console-dropped")

        # Lock: a new join is refused (the moderator's console stays).
        await page.click("#lock-button")
        await expect(page.locator("#lock-button")).to_have_attribute("aria-pressed", "true")
        await expect(page.locator("#console-locked")).to_be_visible()
        await expect(governor.page.locator("#room-locked")).to_be_visible()
        await governor2.context.close()
        people.remove(governor2)
        latecomer = await new_participant(browser, server.url, SECOND_GOVERNOR[0])
        people.append(latecomer)
        await open_room(latecomer, CABINET_SESSION)
        await latecomer.page.wait_for_selector(CONNECTION_TESTED)
        await latecomer.page.click("#join-button")
        await expect(latecomer.page.locator("#media-error")).to_contain_text("locked")
        await expect(latecomer.page.locator("#session")).to_be_hidden()
        await page.click("#lock-button")
        await expect(page.locator("#lock-button")).to_have_attribute("aria-pressed", "false")
        no_page_errors(secretariat, governor)
    finally:
        if page is not None and await page.evaluate("window.cabinetConsole.roomState.locked"):
            await page.evaluate("window.cabinetConsole.moderate('unlock')")
        await close_all(people)


async def test_only_moderators_get_the_console(server: LiveServer, browser: Browser) -> None:
    people: list[Participant] = []
    services = server.services()
    try:
        session = next(m for m in await services.meetings.list_visible(Caller.cli()) if m.title == CABINET_SESSION)
    finally:
        await services.db.dispose()
    try:
        governor = await new_participant(browser, server.url, "governor")
        people.append(governor)
        await governor.page.goto(f"{server.url}/meetings/{session.id}")
        await expect(governor.page.locator("#join-room")).to_be_visible()
        await expect(governor.page.locator("#open-console")).to_have_count(0)
        response = await governor.page.goto(f"{server.url}/meetings/{session.id}/console")
        assert response is not None and response.status == 403
        assert await governor.page.locator("script").count() == 0
        commander = await new_participant(browser, server.url, "commander")
        people.append(commander)
        response = await commander.page.goto(f"{server.url}/meetings/{session.id}/console")
        assert response is not None and response.status == 404
        await expect(commander.page.locator("[role=alert]")).to_have_text(
            "This meeting does not exist or you are not invited to it.")
        assert not any("/socket.io/" in url or "join-token" in url for url in governor.requests + commander.requests)

        # In Khmer, on a tablet.
        secretariat = await new_participant(browser, server.url, "secretariat", viewport=TABLET)
        people.append(secretariat)
        await secretariat.page.goto(f"{server.url}/meetings/{session.id}/console?lang=km")
        await until(secretariat.page, LIVE)
        await expect(secretariat.page.locator("#board-summary")).not_to_be_empty()
        assert "Sites:" not in (await secretariat.page.text_content("#board-summary") or "")
        await secretariat.screenshot("console-tablet-km")
        no_page_errors(secretariat)
    finally:
        await close_all(people)


async def test_lobby_admission_and_removal_from_the_console(server: LiveServer, browser: Browser) -> None:
    people: list[Participant] = []
    page: Page | None = None
    try:
        secretariat = await new_participant(browser, server.url, "secretariat")
        people.append(secretariat)
        page = await open_console(secretariat)
        await page.click("#lobby-button")
        await expect(page.locator("#lobby-button")).to_have_attribute("aria-pressed", "true")
        governor = await new_participant(browser, server.url, "governor")
        people.append(governor)
        await open_room(governor, CABINET_SESSION)
        await governor.page.wait_for_selector(CONNECTION_TESTED)
        await governor.page.click("#join-button")
        await expect(governor.page.locator("#lobby")).to_be_visible()
        gid = await governor.participant_id()
        waiting = page.locator(f'#lobby-list li[data-participant-id="{gid}"]')
        await expect(waiting).to_be_visible()
        await expect(page.locator("#board tr[data-status='lobby']")).to_have_count(1)
        await secretariat.screenshot("console-lobby")
        # Keyboard: focus the Admit button and press Enter.
        await waiting.get_by_role("button").focus()
        await page.keyboard.press("Enter")
        await expect(governor.page.locator("#session")).to_be_visible()
        await expect(page.locator("#lobby-list li")).to_have_count(0)
        await page.click("#lobby-button")
        await expect(page.locator("#lobby-button")).to_have_attribute("aria-pressed", "false")

        row = page.locator(f'#board tr[data-participant-id="{gid}"]')
        await expect(row.locator(".status")).to_have_attribute("data-status", "joined")
        await row.get_by_role("button", name="Remove").click()
        confirm = row.locator(".confirm")
        await expect(confirm).to_be_visible()
        await secretariat.screenshot("console-remove-confirm")
        await confirm.get_by_role("button", name="Cancel").click()
        await expect(confirm).to_be_hidden()
        await expect(governor.page.locator("#session")).to_be_visible()
        await row.get_by_role("button", name="Remove").click()
        await confirm.get_by_role("button", name="Yes, remove").click()
        await expect(governor.page.locator("#removed-note")).to_be_visible()
        await expect(page.locator("#board tr[data-status='removed']")).to_have_count(1)
        # A refused action shows the server's message: removing someone no longer there.
        reply = await page.evaluate(f"window.cabinetConsole.moderate('remove', '{gid}')")
        assert reply["ok"] is False
        await expect(page.locator("#console-error")).to_contain_text("no such participant")
        # The removal binds the person until a moderator lets them back in from the board.
        removed = page.locator("#board tr[data-status='removed']")
        await removed.get_by_role("button", name="Let back in").click()
        await expect(page.locator("#console-status")).to_contain_text("may join again")
        await expect(removed.get_by_role("button", name="Let back in")).to_be_hidden()
        no_page_errors(secretariat)
    finally:
        if page is not None:
            await page.evaluate("window.cabinetConsole.moderate('lobby_off')")
        await close_all(people)
