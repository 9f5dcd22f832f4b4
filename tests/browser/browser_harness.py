"""Driving the meeting room in headless Chromium (Playwright, async API) against a LiveServer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright
from playwright.async_api import Error as PlaywrightError

from harness import LiveServer, make_config
from meetings.demo import DEMO_PASSWORD
from meetings.policy import Caller

#: The pre-join connection test finished with an answer from the server (its quality depends on load).
CONNECTION_TESTED = '#conn-result[data-state="good"], #conn-result[data-state="fair"], #conn-result[data-state="poor"]'

CHROMIUM = "/usr/bin/chromium"
#: See ../shared/DESIGN.md, "Real clients and real tests".
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}
CABINET_SESSION = "Weekly Cabinet Session"
#: A second provincial governor (Battambang is invited to the demo cabinet session as a province).
SECOND_GOVERNOR = ("governor2", "Sun Vichet (Governor of Battambang)", "KH-2")


async def launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)


@dataclass
class Participant:
    """One person at one endpoint: a fresh browser context with its page."""

    username: str
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    async def state(self) -> dict[str, Any]:
        return await self.page.evaluate("window.cabinetRoom.debugState()")  # type: ignore[no-any-return]

    async def participant_id(self) -> str:
        return str((await self.state())["participantId"])

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path


async def until(page: Page, expression: str, *, timeout: float = 15.0) -> Any:
    """Poll a JavaScript expression until it is truthy.

    (Page.wait_for_function compiles its predicate with eval, which the page's CSP rightly forbids;
    Page.evaluate goes through the DevTools protocol and is not subject to it.)
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await page.evaluate(expression)
        except PlaywrightError as error:
            # The page reloaded itself (a script did not arrive: see web.security.SCRIPT_GUARD_JS).
            if "context was destroyed" not in str(error) and "navigation" not in str(error):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        await asyncio.sleep(0.2)


async def new_participant(browser: Browser, base_url: str, username: str, *,
                          viewport: dict[str, int] = LAPTOP, locale: str = "en-GB") -> Participant:
    context = await browser.new_context(viewport=viewport, locale=locale)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    participant = Participant(username, context, page)
    page.on("pageerror", lambda error: participant.errors.append(str(error)))
    page.on("request", lambda request: participant.requests.append(request.url))
    await page.goto(base_url + "/login")
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url + "/")
    return participant


async def open_room(participant: Participant, meeting_title: str) -> None:
    """From the home page to the meeting's page, then its Join button (clicks, as a person would)."""
    page = participant.page
    await page.get_by_role("link", name=meeting_title).first.click()
    await page.wait_for_selector("h1")
    await page.click("#join-room")
    await page.wait_for_selector("#prejoin:not([hidden])")


async def pass_prejoin(participant: Participant) -> str:
    """Wait for the connection test to pass, then join; returns the connection result shown."""
    page = participant.page
    await page.wait_for_selector(CONNECTION_TESTED, timeout=15_000)
    result = await page.text_content("#conn-result") or ""
    await page.click("#join-button")
    await page.wait_for_selector("#session:not([hidden])", timeout=20_000)
    await until(page, "window.cabinetRoom.phase === 'joined'")
    return result


async def join(browser: Browser, base_url: str, username: str, meeting_title: str, **options: Any) -> Participant:
    participant = await new_participant(browser, base_url, username, **options)
    await open_room(participant, meeting_title)
    await pass_prejoin(participant)
    return participant


def _media_from(state: dict[str, Any], participant_id: str) -> dict[str, float]:
    out = {"frames": 0.0, "energy": 0.0, "width": 0.0}
    for stream in state["inbound"]:
        if stream["participantId"] != participant_id:
            continue
        if stream["kind"] == "video":
            out["frames"] += stream["framesDecoded"]
            out["width"] = max(out["width"], stream["frameWidth"])
        else:
            out["energy"] += stream["totalAudioEnergy"]
    return out


async def wait_for_media(receiver: Participant, sender_id: str, *, timeout: float = 25.0) -> dict[str, float]:
    """Wait until ``receiver`` decodes video from ``sender_id`` and hears sound from them, both rising."""
    deadline = time.monotonic() + timeout
    first: dict[str, float] | None = None
    latest: dict[str, float] = {}
    while time.monotonic() < deadline:
        latest = _media_from(await receiver.state(), sender_id)
        if latest["frames"] > 0 and latest["energy"] > 0:
            if first is None:
                first = latest
            elif latest["frames"] > first["frames"] and latest["energy"] > first["energy"]:
                return latest
        await asyncio.sleep(0.5)
    raise AssertionError(f"{receiver.username} gets no rising video and audio from {sender_id}: {latest}; "
                         f"state: {await receiver.state()}")


async def wait_for_video(receiver: Participant, sender_id: str, *, timeout: float = 25.0) -> dict[str, float]:
    """Wait until ``receiver`` decodes rising video from ``sender_id`` (on the stage or in a thumbnail).

    With slots a site hears the stage and the session's recent or chosen voices, not everybody:
    :func:`wait_for_media` (video and sound) is for the participant on the stage."""
    deadline = time.monotonic() + timeout
    first: dict[str, float] | None = None
    latest: dict[str, float] = {}
    while time.monotonic() < deadline:
        latest = _media_from(await receiver.state(), sender_id)
        if latest["frames"] > 0:
            if first is None:
                first = latest
            elif latest["frames"] > first["frames"]:
                return latest
        await asyncio.sleep(0.5)
    raise AssertionError(f"{receiver.username} gets no rising video from {sender_id}: {latest}; "
                         f"state: {await receiver.state()}")


async def wait_for_stage_media(receiver: Participant, *, timeout: float = 25.0) -> None:
    """Wait until ``receiver`` decodes rising video and hears rising sound on its stage (whoever is there)."""
    deadline = time.monotonic() + timeout
    first: tuple[float, float] | None = None
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = await receiver.state()
        by_slot = {s["slotId"]: s for s in state["inbound"]}
        frames = by_slot.get("stage-video", {}).get("framesDecoded", 0)
        energy = by_slot.get("stage-audio", {}).get("totalAudioEnergy", 0)
        if frames > 0 and energy > 0:
            if first is None:
                first = (frames, energy)
            elif frames > first[0] and energy > first[1]:
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{receiver.username}'s stage has no rising video and sound: {state}")


async def close_all(participants: list[Participant]) -> None:
    for participant in participants:
        try:
            await asyncio.wait_for(participant.context.close(), 10)
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


async def add_second_governor(server: LiveServer) -> None:
    """The account of SECOND_GOVERNOR (a server fixture of one's own does what conftest's does)."""
    services = server.services()
    try:
        username, full_name, office_code = SECOND_GOVERNOR
        office = next(o for o in await services.offices.list(Caller.cli()) if o.code == office_code)
        await services.people.create(Caller.cli(), username=username, full_name=full_name, office_id=office.id,
                                     roles=["delegate"], password=DEMO_PASSWORD)
    finally:
        await services.db.dispose()


def start_server(data_dir: Path, **overrides: Any) -> LiveServer:
    """A live server on loopback with the second governor, like conftest's, with configuration overrides."""
    config = make_config(data_dir, **{"media.ice_bind_addresses": ["127.0.0.1"], **overrides})
    live = LiveServer(config).start()
    asyncio.run(add_second_governor(live))
    return live


# -- publishing bots (python -m bots --publish: pre-encoded VP8/Opus, no encoding on this machine) ------

#: Bot sites: username, full name, office (provinces invited to the demo cabinet session).
BOT_SITES = [
    ("site1", "Chea Bopha (Governor of Banteay Meanchey)", "KH-1"),
    ("site3", "Heng Sokha (Governor of Kampong Cham)", "KH-3"),
    ("site4", "Lim Dara (Governor of Kampong Chhnang)", "KH-4"),
    ("site5", "Mao Sopheap (Governor of Kampong Speu)", "KH-5"),
    ("site6", "Nhem Vanna (Governor of Kampong Thom)", "KH-6"),
    ("site7", "Ouk Channa (Governor of Kampot)", "KH-7"),
    ("site8", "Pen Rithy (Governor of Kandal)", "KH-8"),
    ("site9", "Roeun Malis (Governor of Koh Kong)", "KH-9"),
    ("site10", "Seng Kosal (Governor of Kratie)", "KH-10"),
]
async def create_bot_people(server: LiveServer) -> int:
    services = server.services()
    try:
        offices = {o.code: o.id for o in await services.offices.list(Caller.cli())}
        for username, full_name, code in BOT_SITES:
            await services.people.create(Caller.cli(), username=username, full_name=full_name, office_id=offices[code],
                                         roles=["delegate"], password=DEMO_PASSWORD)
        meetings = await services.meetings.list_visible(Caller.cli())
        return next(m.id for m in meetings if m.title == CABINET_SESSION)
    finally:
        await services.db.dispose()


@dataclass
class Sites:
    meeting_id: int
    cache_dir: Path
    log_dir: Path


class BotProcesses:
    """Publishing bots, one process each; stopped (SIGTERM, then SIGKILL) when the test ends."""

    def __init__(self, server: LiveServer, sites: Sites) -> None:
        self.server = server
        self.sites = sites
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int, seconds: float = 400, *, silent: bool = False) -> list[str]:
        names = []
        for username, full_name, _ in BOT_SITES[len(self.procs):len(self.procs) + count]:
            log = open(self.sites.log_dir / f"{username}.log", "ab")  # noqa: SIM115 - the process keeps it
            proc = subprocess.Popen(
                [sys.executable, "-m", "bots", "--url", self.server.url, "--username", username, "--password-stdin",
                 "--meeting", str(self.sites.meeting_id), "--publish", "--seconds", str(seconds),
                 "--name", username, "--cache-dir", str(self.sites.cache_dir), "--bind", "127.0.0.1",
                 *(["--silent"] if silent else [])],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            assert proc.stdin is not None
            proc.stdin.write((DEMO_PASSWORD + "\n").encode())
            proc.stdin.close()
            self.procs.append(proc)
            names.append(full_name)
        return names

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs.clear()
