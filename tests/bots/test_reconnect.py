"""Bots reconnect as the web page does: a real server process killed (SIGKILL) and started again on
the same port and data directory; reconnection turned off; a fatal refusal (removed by a moderator)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from conftest import wait_for
from server_process import ServerProcess

from bots.bot import Bot, BotOptions
from bots.client import SignalingClient
from bots.login import LoginTokenSource, fetch_join_token
from bots.media_files import PreEncodedMedia
from meetings.demo import DEMO_PASSWORD

MEETING = 1  # the demo's weekly session is meeting 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(Path(tmp_path_factory.mktemp("killable")) / "data").start()
    yield process
    process.stop()


@pytest.fixture
async def bots() -> AsyncIterator[list[Bot]]:
    made: list[Bot] = []
    yield made
    for bot in made:
        await asyncio.wait_for(bot.stop(), 15)


def logged_in(server: ServerProcess, username: str) -> LoginTokenSource:
    return LoginTokenSource(server.url, username, DEMO_PASSWORD, MEETING)


async def publishing(bot: Bot, timeout: float = 15.0) -> None:
    """The bot's (current) publisher is connected to the server and sending."""
    await wait_for(lambda: bot.publisher is not None and bot.publisher.connection_state == "connected", timeout)
    publisher = bot.publisher
    assert publisher is not None
    sent = publisher.stats.audio_packets
    await wait_for(lambda: publisher.stats.audio_packets > sent + 10, timeout)


async def kill_and_restart(server: ServerProcess, while_down: float = 0.0) -> float:
    """SIGKILL the server, start it again on the same port and data dir; returns when it answers again."""
    server.kill()
    await asyncio.sleep(while_down)
    await asyncio.to_thread(server.start)
    return time.monotonic()


def parse(moment: str | None) -> datetime:
    assert moment is not None
    parsed = datetime.fromisoformat(moment)
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    return parsed


async def test_a_logged_in_bot_comes_back_after_the_server_is_killed_and_restarted(
        server: ServerProcess, media: PreEncodedMedia, bots: list[Bot]) -> None:
    bot = Bot(BotOptions(url=server.url, token_source=logged_in(server, "governor"), name="governor"), media)
    bots.append(bot)
    await asyncio.wait_for(bot.start(), 20)
    first_participant = bot.client.participant_id
    await publishing(bot)
    assert bot.report().reconnect == "on"

    server.kill()
    await wait_for(lambda: bot.state == "reconnecting", timeout=5)
    await asyncio.sleep(1.0)  # an attempt or two against a dead server
    await asyncio.to_thread(server.start)
    ready = time.monotonic()
    await bot.wait_joined(timeout=15)  # backoff is capped at 5 s, plus login, connect, join
    back_after = time.monotonic() - ready
    await publishing(bot)
    assert back_after < 12, back_after

    report = bot.report()
    assert report.reconnects == 1 and report.gave_up is None and not report.errors, report.errors
    assert len(report.connections) == 2
    lost, current = report.connections
    assert lost.ended_at is not None and "disconnected" in (lost.end_reason or "")
    assert current.joined_at is not None and current.ended_at is None
    assert parse(lost.connected_at) <= parse(lost.joined_at) <= parse(lost.ended_at)
    assert parse(lost.ended_at) < parse(current.connected_at) <= parse(current.joined_at)
    assert lost.participant_id == first_participant and current.participant_id == report.participant_id
    assert report.publish is not None and report.publish.audio_packets > 0
    assert "reconnects: 1" in report.summary()

    await bot.stop()
    final = bot.report()
    assert final.connections[-1].end_reason == "left" and final.connections[-1].ended_at is not None


async def test_b_without_reconnection_a_bot_stays_out(
        server: ServerProcess, media: PreEncodedMedia, bots: list[Bot]) -> None:
    """--no-reconnect (a logged-in bot), and a bot given a bare single-use token, which cannot reconnect."""
    off = Bot(BotOptions(url=server.url, token_source=logged_in(server, "chair"), name="chair", reconnect=False,
                         subscribe=False), media)
    bare = Bot(BotOptions(url=server.url, token=await fetch_join_token(server.url, "secretariat", DEMO_PASSWORD, MEETING),
                          name="secretariat", publish=False), media)
    bots.extend([off, bare])
    await asyncio.wait_for(off.start(), 20)
    await asyncio.wait_for(bare.start(), 20)
    assert off.report().reconnect == "off" and bare.report().reconnect == "impossible"

    await kill_and_restart(server)
    await asyncio.sleep(2.0)  # past the first attempts a reconnecting bot would make (0.5 s, then 1 s)
    for bot in (off, bare):
        report = bot.report()
        assert bot.state == "failed" and not bot.client.connected
        assert report.reconnects == 0 and len(report.connections) == 1
        assert report.connections[0].ended_at is not None and report.gave_up is not None
        assert report.gave_up in report.errors
    assert "reconnection is off" in (off.report().gave_up or "")
    assert "single-use" in (bare.report().gave_up or "") and "--username" in (bare.report().gave_up or "")


async def test_c_a_bot_removed_by_the_moderator_does_not_reconnect(
        server: ServerProcess, media: PreEncodedMedia, bots: list[Bot]) -> None:
    bot = Bot(BotOptions(url=server.url, token_source=logged_in(server, "observer"), name="observer", publish=False),
              media)
    bots.append(bot)
    await asyncio.wait_for(bot.start(), 20)
    removed_id = bot.client.participant_id
    chair = SignalingClient(server.url, await fetch_join_token(server.url, "chair", DEMO_PASSWORD, MEETING), timeout=10)
    try:
        await chair.connect()
        await chair.join()
        await chair.call("moderate", {"action": "remove", "participant_id": removed_id})
        await wait_for(lambda: bot.state == "failed", timeout=5)
        await asyncio.sleep(1.0)  # a reconnecting bot would have tried by now
    finally:
        await chair.disconnect()
    report = bot.report()
    assert report.reconnects == 0 and len(report.connections) == 1
    assert report.gave_up is not None and "removed" in report.gave_up
    assert report.events.get("removed") == 1
    assert "removed" in (report.connections[0].end_reason or "")
