"""Reconnection logic against the stand-in socket.io server on 127.0.0.1 (no server restart needed):
the server's ``closing`` codes, the backoff, token sources and the report's new fields."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest

from conftest import Closer, wait_for
from fake_signaling import FakeSignaling

from bots.bot import Bot, BotOptions, backoff
from bots.cli import build_parser, main_async
from bots.errors import LoginError, ReconnectImpossible
from bots.media_files import PreEncodedMedia
from bots.report import BotReport
from bots.tokens import CallableTokenSource, StaticToken


@pytest.fixture
async def server(sfu: Closer) -> AsyncIterator[FakeSignaling]:
    signaling = FakeSignaling(sfu.router, {"tok-alice": "alice", "tok-bob": "bob"})
    await signaling.start()
    try:
        yield signaling
    finally:
        await asyncio.wait_for(signaling.stop(), 10)


async def drop(server: FakeSignaling, participant_id: str, closing: dict[str, str] | None = None) -> None:
    """The server closes that participant's connection, saying why first when ``closing`` is given."""
    sid = next(sid for sid, peer in server.peers.items() if peer.participant_id == participant_id)
    if closing is not None:
        await server.sio.emit("closing", closing, to=sid)
    await server.sio.disconnect(sid)


class Minted:
    """Counts the tokens a bot asked for; fails the way it is told to."""

    def __init__(self, token: str, fail_after: int | None = None, error: Exception | None = None) -> None:
        self.token, self.fail_after, self.error, self.calls = token, fail_after, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after and self.error is not None:
            raise self.error
        return self.token


def test_backoff_is_the_pages() -> None:
    assert [backoff(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert [backoff(n, prompt=True) for n in range(4)] == [0.5, 1.0, 1.0, 1.0]


async def test_static_token_is_good_once() -> None:
    source = StaticToken("t")
    assert not source.refreshable and await source.token() == "t"
    with pytest.raises(ReconnectImpossible, match="single-use"):
        await source.token()


async def test_restarting_server_gets_the_bot_back_with_a_new_token(server: FakeSignaling, media: PreEncodedMedia) -> None:
    minted = Minted("tok-alice")
    bot = Bot(BotOptions(url=server.url, token_source=CallableTokenSource(minted), name="alice", subscribe=False), media)
    try:
        await asyncio.wait_for(bot.start(), 15)
        await drop(server, "alice", {"code": "restarting", "message": "planned restart"})
        await bot.wait_joined(timeout=10)
        await wait_for(lambda: bot.publisher is not None and bot.publisher.stats.audio_packets > 10, 10)
        report = bot.report()
        assert minted.calls == 2  # one token per connection
        assert report.reconnects == 1 and len(report.connections) == 2 and not report.errors
        assert "restarting" in (report.connections[0].end_reason or "") and report.events["closing"] == 1
        as_json = json.loads(report.to_json())
        assert as_json["reconnects"] == 1 and as_json["connections"][1]["joined_at"] and as_json["reconnect"] == "on"
    finally:
        await bot.stop()


async def test_a_fatal_closing_code_stops_the_bot(server: FakeSignaling, media: PreEncodedMedia) -> None:
    minted = Minted("tok-bob")
    bot = Bot(BotOptions(url=server.url, token_source=CallableTokenSource(minted), name="bob", publish=False), media)
    try:
        await asyncio.wait_for(bot.start(), 15)
        await drop(server, "bob", {"code": "removed", "message": "removed by a moderator"})
        await wait_for(lambda: bot.state == "failed", 5)
        await asyncio.sleep(0.8)
        assert minted.calls == 1 and bot.report().reconnects == 0 and "refused" in (bot.gave_up or "")
    finally:
        await bot.stop()


async def test_a_login_refused_while_reconnecting_stops_the_bot(server: FakeSignaling, media: PreEncodedMedia) -> None:
    """E.g. the account was disabled: its login session ended, logging in again is refused (401)."""
    minted = Minted("tok-bob", fail_after=1, error=LoginError("POST /api/session failed with HTTP 401", fatal=True,
                                                               status=401))
    bot = Bot(BotOptions(url=server.url, token_source=CallableTokenSource(minted), name="bob", publish=False), media)
    try:
        await asyncio.wait_for(bot.start(), 15)
        await drop(server, "bob")  # a plain disconnect (flooding, network...): not fatal by itself
        await wait_for(lambda: bot.state == "failed", 5)
        report = bot.report()
        assert minted.calls == 2 and report.reconnects == 0
        assert "HTTP 401" in (report.gave_up or "") and len(report.connections) == 1
    finally:
        await bot.stop()


async def test_unreachable_token_source_is_retried(server: FakeSignaling, media: PreEncodedMedia) -> None:
    minted = Minted("tok-bob", fail_after=1, error=LoginError("cannot reach the server"))
    bot = Bot(BotOptions(url=server.url, token_source=CallableTokenSource(minted), name="bob", publish=False), media)
    try:
        await asyncio.wait_for(bot.start(), 15)
        await drop(server, "bob")
        await wait_for(lambda: minted.calls >= 2, 5)  # the first attempt, 0.5 s after the loss, fails
        assert bot.state == "reconnecting"
        minted.error = None  # the server is back
        await bot.wait_joined(timeout=5)
        assert bot.report().reconnects == 1 and bot.report().gave_up is None
    finally:
        await bot.stop()


async def test_cli_bare_token_bot_reports_it_cannot_reconnect(server: FakeSignaling, media: PreEncodedMedia) -> None:
    assert media.path is not None
    out = io.StringIO()

    async def drop_soon() -> None:
        # Once in (subscribed: its answer arrived), so that the loss is one of a joined bot.
        await wait_for(lambda: any(p.participant_id == "alice" and p.answered for p in server.peers.values()), 15)
        await drop(server, "alice")

    dropper = asyncio.ensure_future(drop_soon())
    code = await asyncio.wait_for(
        main_async(["--url", server.url, "--token", "tok-alice", "--subscribe", "--seconds", "20", "--json",
                    "--cache-dir", str(media.path.parent)], stdout=out), 30)
    await dropper
    report = json.loads(out.getvalue())
    assert code == 1 and report["reconnect"] == "impossible" and report["reconnects"] == 0
    assert report["connections"][0]["ended_at"] and "single-use" in report["gave_up"]


def test_cli_help_and_flag() -> None:
    parser = build_parser()
    text = " ".join(parser.format_help().split())
    assert "--no-reconnect" in text and "single-use" in text and "cannot reconnect" in text
    assert parser.parse_args(["--url", "u", "--token", "t", "--no-reconnect"]).no_reconnect
    # Old reports still read the same; the new fields have defaults.
    assert BotReport(name="b", mode="publish").to_dict()["reconnects"] == 0
