"""A real Chromium inside a link-lab site: every packet the page sends or receives crosses the site's relay.

Playwright starts Chromium and talks to it over a pipe (``--remote-debugging-pipe``, file descriptors 3
and 4), not over the network, so Chromium may live in another network namespace: ``launch_in_site``
points Playwright's ``executable_path`` at a small wrapper script that runs
``ip netns exec <site namespace> /usr/bin/chromium "$@"`` (``ip netns exec`` execs the command, which
inherits the pipe). The page then reaches the server at the lab's server address (198.18.0.1) through
the relay, and its ICE host candidate is the site's address; the DevTools protocol (``page.evaluate``,
clicks) never touches the emulated link.

    async with async_playwright() as pw:
        browser = await launch_in_site(pw, site, tmp_dir, server.url)
        governor = await join_from_site(browser, server.url, "governor", CABINET_SESSION)

Importing this module puts tests/browser on the import path (the Chromium flags and the room helpers
live in tests/browser/browser_harness.py).
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from pathlib import Path

from playwright.async_api import Browser, Playwright

from linklab import Site

_BROWSER_TESTS = Path(__file__).resolve().parents[1] / "browser"
if str(_BROWSER_TESTS) not in sys.path:
    sys.path.insert(0, str(_BROWSER_TESTS))

from browser_harness import (  # noqa: E402
    CABINET_SESSION,
    CHROMIUM,
    CHROMIUM_FLAGS,
    Participant,
    new_participant,
    open_room,
    until,
)

__all__ = ["CABINET_SESSION", "CHROMIUM", "chromium_wrapper", "join_from_site", "launch_in_site", "until"]

#: The page's pre-join connection test over a slow, lossy link takes longer than on loopback.
PREJOIN_TIMEOUT_MS = 60_000


def chromium_wrapper(site: Site, directory: Path) -> Path:
    """An executable script running Chromium (with whatever arguments Playwright gives) inside ``site``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"chromium-in-{site.name}"
    argv = " ".join(shlex.quote(part) for part in site.exec_args([CHROMIUM]))
    path.write_text(f'#!/bin/sh\n# Chromium inside the link-lab site {site.name} ({site.netns}).\nexec {argv} "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


async def launch_in_site(playwright: Playwright, site: Site, directory: Path, server_url: str) -> Browser:
    """Headless Chromium (the tests' usual flags) whose network is ``site``'s link.

    ``server_url`` (http://198.18.0.1:port) is treated as a secure origin: the camera and microphone
    (getUserMedia) are only offered to secure origins, and only loopback counts as one over plain HTTP."""
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM} is not installed (Debian package chromium)")
    wrapper = chromium_wrapper(site, directory)
    args = [*CHROMIUM_FLAGS, f"--unsafely-treat-insecure-origin-as-secure={server_url}"]
    return await playwright.chromium.launch(executable_path=str(wrapper), args=args, headless=True, timeout=60_000)


async def join_from_site(browser: Browser, base_url: str, username: str, meeting_title: str = CABINET_SESSION, *,
                         mute_microphone: bool = True) -> Participant:
    """Log in, open the meeting and join it, as a person would (clicks), over the site's link.

    ``mute_microphone``: press the page's microphone button once joined (unless the floor has muted it
    already), so that the fake microphone's beep never makes this site the dominant speaker (the stage
    should stay with the loopback chair)."""
    participant = await new_participant(browser, base_url, username)
    participant.context.set_default_timeout(PREJOIN_TIMEOUT_MS)
    page = participant.page
    await open_room(participant, meeting_title)
    await page.wait_for_selector('#conn-result[data-state="good"], #conn-result[data-state="fair"], '
                                 '#conn-result[data-state="poor"]', timeout=PREJOIN_TIMEOUT_MS)
    await page.click("#join-button")
    await page.wait_for_selector("#session:not([hidden])", timeout=PREJOIN_TIMEOUT_MS)
    await until(page, "window.cabinetRoom.phase === 'joined'", timeout=PREJOIN_TIMEOUT_MS / 1000)
    # A delegate muted by the floor, or without a microphone: the button is disabled, nothing to do.
    if mute_microphone and not await page.evaluate(
            "window.cabinetRoom.micMuted || document.getElementById('mic-button').disabled"):
        await page.click("#mic-button")
        await until(page, "window.cabinetRoom.micMuted === true")
    return participant
