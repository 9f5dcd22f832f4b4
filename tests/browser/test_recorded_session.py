"""A recorded session end to end (issue 12): three bots, two agenda items, a floor grant, 90 s.

A real server process records the session from opening to closing. The bots stamp every frame
(counter, send time, identity: bots/stamp.py), so the files can be held against what was sent:

* every file decodes with PyAV; per track, frames missing from the stamp counters <= 1 %;
* every track lies on one time line: (recording start + frame time) - send time agrees across
  tracks within 100 ms;
* the manifest's chapters are the live record's agenda item times; the floor grant is a speaker
  marker;
* the proceedings carry the chair, then the floor holder from the grant, then the chair again;
* the recording is sealed (row closed, manifest SHA-256 in the audit trail) within 30 s of closing,
  and ``verify`` finds it intact;
* Chromium plays it from the archive page (the chair, logged in): currentTime advances, and a click
  on the second agenda item lands within 1 s of its start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import av
import pytest
from browser_harness import CHROMIUM, close_all, new_participant, until
from playwright.async_api import Browser

from bots.bot import Bot
from bots.media_files import PreEncodedMedia
from bots.stamp import read_stamp, source_tag
from meetings.policy import Caller
from recordings.manifest import load_manifest, verify
from recordings.session import PROCEEDINGS_NAME
from recordings.webm_repair import read_frames
from bot_fixtures import bots, small_media, start_publishing_bots  # noqa: F401 (fixtures)
from server_process import ServerProcess
from session_helpers import eventually, new_session, token_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
PLAYER = "document.getElementById('player')"
CLI = Caller.cli()
SESSION_SECONDS = 90


async def delegate_token(server: ServerProcess, meeting_id: int) -> str:
    services = server.services()
    try:
        offices = [o for o in await services.offices.list(CLI) if o.kind.value == "province"]
        person = await services.people.create(CLI, username="rec.delegate", full_name="Recorded delegate",
                                              office_id=offices[-1].id, roles=["delegate"],
                                              password=secrets.token_urlsafe(18))
        await services.meetings.invite(CLI, meeting_id, person_ids=[person.id])
        return services.meetings.signer.mint(meeting_id=meeting_id, person_id=person.id, office_id=person.office_id,
                                             roles=("delegate",))[0]
    finally:
        await services.db.dispose()


async def recording_rows(server: ServerProcess, meeting_id: int) -> list[Any]:
    services = server.services()
    try:
        return list(await services.recordings.list_for_meeting(CLI, meeting_id))
    finally:
        await services.db.dispose()


async def live_record(server: ServerProcess, meeting_id: int) -> tuple[list[Any], list[Any]]:
    services = server.services()
    try:
        meeting = await services.meetings.get(CLI, meeting_id)
        events = await services.audit.recent(CLI, limit=200)
        return list(meeting.agenda), list(events)
    finally:
        await services.db.dispose()


def stamps_of(path: Path) -> dict[int, list[tuple[int, Any]]]:
    out: dict[int, list[tuple[int, Any]]] = {}
    for frame in read_frames(path):
        stamp = read_stamp(frame.data)
        assert stamp is not None, path.name
        out.setdefault(frame.track, []).append((frame.timestamp_ms, stamp))
    return out


def decode_count(path: Path) -> int:
    decoded = 0
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size:
                decoded += len(packet.decode())
    return decoded


async def test_three_bots_ninety_seconds_recorded_chaptered_aligned_and_sealed(
        tmp_path: Path, small_media: PreEncodedMedia, bots: dict[str, Bot], browser: Browser) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    server = ServerProcess(tmp_path / "data").start()
    try:
        meeting_id = await new_session(server)  # type: ignore[arg-type]
        tokens = {"chair": await token_for(server, "chair", meeting_id),  # type: ignore[arg-type]
                  "governor": await token_for(server, "governor", meeting_id),  # type: ignore[arg-type]
                  "delegate": await delegate_token(server, meeting_id)}
        await start_publishing_bots(server.url, tokens, small_media, bots, speaking=("chair",))
        chair = bots["chair"].client
        pid = {name: bot.client.participant_id for name, bot in bots.items()}
        items = await _item_ids(server, meeting_id)
        opened = await chair.call("session", {"action": "open"})
        assert opened["ok"], opened
        t0 = time.monotonic()
        assert (await chair.call("set_agenda_item", {"item_id": items[0]}))["ok"]

        async def at(second: float) -> None:
            await asyncio.sleep(max(0.0, t0 + second - time.monotonic()))

        await at(25)
        granted = await chair.call("floor", {"action": "grant", "participant_id": pid["governor"]})
        assert granted["ok"], granted
        await at(50)
        assert (await chair.call("set_agenda_item", {"item_id": items[1]}))["ok"]
        await at(70)
        assert (await chair.call("floor", {"action": "revoke"}))["ok"]
        await at(SESSION_SECONDS)
        closed = await chair.call("session", {"action": "close"})
        assert closed["ok"], closed
        closed_at = time.monotonic()

        async def sealed() -> Any:
            rows = await recording_rows(server, meeting_id)
            assert len(rows) == 1 and rows[0].state.value == "closed" and rows[0].manifest_sha256, rows
            return rows[0]

        recording = await eventually(sealed, timeout=30)
        assert time.monotonic() - closed_at < 30
        directory = tmp_path / "data" / "recordings" / recording.key
        assert verify(directory, recording.manifest_sha256) == []
        manifest = load_manifest(directory)
        items_rows, audit = await live_record(server, meeting_id)
        assert any(e.action == "recording.close" and recording.manifest_sha256 in str(e.details) for e in audit)
        await bots["governor"].stop()  # the machine's two cores: one browser next to the server
        await play_in_chromium(browser, server.url, recording.id, manifest["record"]["chapters"])
    finally:
        await asyncio.gather(*(asyncio.wait_for(bot.stop(), 20) for bot in bots.values()), return_exceptions=True)
        bots.clear()
        server.stop()

    started_us = dt.datetime.fromisoformat(manifest["started_utc"].replace("Z", "+00:00")).timestamp() * 1e6
    started = dt.datetime.fromisoformat(manifest["started_utc"].replace("Z", "+00:00"))
    # Chapters: the live record's item times, on the recording's time line.
    chapters = {c["item_id"]: c for c in manifest["record"]["chapters"]}
    for item in items_rows:
        chapter = chapters[item.id]
        assert abs(chapter["start_ms"] - (item.started_at - started).total_seconds() * 1000) < 1000
        assert abs(chapter["end_ms"] - (item.ended_at - started).total_seconds() * 1000) < 1000
    speakers = manifest["record"]["speakers"]
    assert len(speakers) == 1 and 23_000 < speakers[0]["start_ms"] < 30_000 and speakers[0]["end_ms"] > 65_000

    medians = []
    who = {participant: name for name, participant in pid.items()}
    for entry in manifest["files"]:
        if not entry["present"]:  # a voice never heard (floor control) leaves no file
            assert entry["media"] == "audio" and who[entry["participant_id"]] == "delegate", entry
            continue
        path = directory / entry["name"]
        assert decode_count(path) >= sum(1 for _ in read_frames(path)) - 2
        for frames in stamps_of(path).values():
            counters = sorted(s.counter for _, s in frames)
            gaps = [(a, b) for a, b in zip(counters, counters[1:], strict=False) if b - a > 1]
            if entry["kind"] == "track" and entry["media"] == "audio" and who[entry["participant_id"]] != "chair":
                # Only the chair and the floor holder are heard once the session is open: the governor's
                # voice from the grant (25 s) to the revocation (70 s), the delegate's never.
                heard = [ms for ms, _ in frames if ms > 2000]
                if who[entry["participant_id"]] == "governor":
                    assert 24_000 < heard[0] < 27_000 and 69_000 < heard[-1] < 72_000, (heard[0], heard[-1])
                    within = sorted(s.counter for ms, s in frames if ms > 2000)
                    assert within[-1] - within[0] + 1 - len(within) <= len(within) // 100
                else:
                    assert heard == []
                continue
            missing = sum(b - a - 1 for a, b in gaps)
            assert missing <= len(counters) // 100, (entry["name"], missing, len(counters), gaps[:5])
            offsets = [started_us + ms * 1000 - s.send_us for ms, s in frames]
            if entry["kind"] == "track":
                medians.append(statistics.median(offsets))
    assert len(medians) == 4 and max(medians) - min(medians) < 100_000, medians

    video = [(ms, s.source) for ms, s in stamps_of(directory / PROCEEDINGS_NAME)[2]]
    chair_tag, governor_tag = source_tag(pid["chair"]), source_tag(pid["governor"])
    holder = [ms for ms, source in video if source == governor_tag]
    assert holder and 24_000 < holder[0] < 30_000 and 68_000 < holder[-1] < 75_000, (holder[:1], holder[-1:])
    assert all(source == chair_tag for ms, source in video if ms < holder[0] or ms > holder[-1])


async def play_in_chromium(browser: Browser, url: str, recording_id: int, chapters: list[dict[str, Any]]) -> None:
    """The chair opens the recording's page: the proceedings play; the second item's chapter seeks."""
    viewer = await new_participant(browser, url, "chair")
    try:
        page = viewer.page
        await page.goto(f"{url}/archive/{recording_id}")
        await until(page, f"{PLAYER}.readyState >= 1 && {PLAYER}.duration > 60", timeout=20)
        await page.evaluate(f"{PLAYER}.muted = true; {PLAYER}.play()")
        await until(page, f"{PLAYER}.currentTime > 1.0", timeout=20)
        target = chapters[1]["start_ms"] / 1000
        await page.click("#chapters li:nth-child(2) button.seek")
        await until(page, f"Math.abs({PLAYER}.currentTime - {target}) < 1.0 && !{PLAYER}.seeking", timeout=15)
        await until(page, f"{PLAYER}.currentTime > {target + 0.5}", timeout=15)  # and plays on from there
        await viewer.screenshot("archive-recorded-session")  # test-artifacts/, for a look at the page
        assert viewer.errors == [], viewer.errors
    finally:
        await close_all([viewer])


async def _item_ids(server: ServerProcess, meeting_id: int) -> list[int]:
    services = server.services()
    try:
        meeting = await services.meetings.get(CLI, meeting_id)
        return [i.id for i in sorted(meeting.agenda, key=lambda i: i.position)]
    finally:
        await services.db.dispose()
