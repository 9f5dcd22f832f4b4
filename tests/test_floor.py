"""Floor control proved at the media level: bots through the real server; the SFU forwards a
delegate's audio only while the chair has given them the floor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bots.bot import Bot, BotOptions
from bots.media_files import MediaParams, PreEncodedMedia, load_media
from harness import LiveServer, make_config
from session_helpers import CLI, eventually, new_session, token_for, with_services


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(make_config(tmp_path_factory.mktemp("floor"), **{"media.ice_bind_addresses": ["127.0.0.1"]}))
    yield live.start()
    live.stop()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> PreEncodedMedia:
    return load_media(MediaParams(), Path(tmp_path_factory.mktemp("bot-media")))


@pytest.fixture
async def bots() -> AsyncIterator[list[Bot]]:
    made: list[Bot] = []
    yield made
    for bot in made:
        await bot.stop()


async def start_bot(server: LiveServer, media: PreEncodedMedia, made: list[Bot], username: str, meeting_id: int,
                    **options: object) -> Bot:
    bot = Bot(BotOptions(url=server.url, token=await token_for(server, username, meeting_id), name=username,
                         **options), media)  # type: ignore[arg-type]
    made.append(bot)
    await bot.start()
    return bot


def audio_packets(listener: Bot, speaker: Bot) -> int:
    return sum(s.packets for s in listener.report().streams
               if s.kind == "audio" and s.participant_id == speaker.client.participant_id)


async def heard_growing(listener: Bot, speaker: Bot, *, at_least: int = 25, timeout: float = 20) -> None:
    before = audio_packets(listener, speaker)

    def grew() -> None:
        assert audio_packets(listener, speaker) - before >= at_least, (before, audio_packets(listener, speaker))

    await eventually(grew, timeout=timeout)


async def silent(listener: Bot, speaker: Bot, seconds: float = 1.5) -> None:
    await asyncio.sleep(0.5)  # packets already in flight
    before = audio_packets(listener, speaker)
    await asyncio.sleep(seconds)
    assert audio_packets(listener, speaker) - before <= 2, "the SFU forwarded audio of someone without the floor"


async def test_only_the_floor_holder_is_heard(server: LiveServer, media: PreEncodedMedia, bots: list[Bot]) -> None:
    meeting_id = await new_session(server, extra_office_codes=("MR-4",))
    chair = await start_bot(server, media, bots, "chair", meeting_id, video=False, speaking=False)
    governor = await start_bot(server, media, bots, "governor", meeting_id, video=False, subscribe=False)
    listener = await start_bot(server, media, bots, "observer", meeting_id, publish=False)
    # Before the session opens everyone is heard (sound check).
    await heard_growing(listener, governor)
    assert (await chair.client.call("session", {"action": "open"}))["session"]["state"] == "open"
    await silent(listener, governor)
    await heard_growing(listener, chair)  # the chair is always heard
    # A producer published after the session opened is muted from its first packet.
    commander = await start_bot(server, media, bots, "commander", meeting_id, video=False, subscribe=False)
    await asyncio.sleep(2.0)
    assert audio_packets(listener, commander) == 0
    # The chair gives the governor the floor: now the others hear them.
    granted = await chair.client.call("floor", {"action": "grant", "participant_id": governor.client.participant_id})
    assert granted["floor"]["holder"]["participant_id"] == governor.client.participant_id
    await heard_growing(listener, governor)
    # Granting to another ends the previous grant.
    await chair.client.call("floor", {"action": "grant", "participant_id": commander.client.participant_id})
    await heard_growing(listener, commander)
    await silent(listener, governor)
    await chair.client.call("floor", {"action": "revoke"})
    await silent(listener, commander)
    # A time-limited grant ends by itself.
    await chair.client.call("floor", {"action": "grant", "participant_id": governor.client.participant_id,
                                      "limit_seconds": 3})
    await heard_growing(listener, governor, timeout=3)

    async def expired() -> None:
        grants = await with_services(server, lambda s: s.floor.grants(CLI, meeting_id))
        assert [g.end_reason for g in grants] == ["revoked", "revoked", "expired"], [g.end_reason for g in grants]

    await eventually(expired, timeout=10)
    await silent(listener, governor)
    actions = [e.action for e in await with_services(server, lambda s: s.audit.recent(CLI, limit=100))]
    for action in ("session.open", "floor.grant", "floor.revoked", "floor.expired"):
        assert action in actions


async def test_the_holder_yields_and_leaving_ends_the_floor(server: LiveServer, media: PreEncodedMedia,
                                                            bots: list[Bot]) -> None:
    meeting_id = await new_session(server)
    chair = await start_bot(server, media, bots, "chair", meeting_id, video=False, speaking=False, lean=True)
    governor = await start_bot(server, media, bots, "governor", meeting_id, video=False, subscribe=False)
    await chair.client.call("session", {"action": "open"})
    pid = governor.client.participant_id
    await governor.client.call("raise_hand", {})
    await chair.client.call("floor", {"action": "grant", "participant_id": pid, "limit_seconds": 600})
    assert (await governor.client.call("floor", {"action": "yield"}))["floor"]["holder"] is None
    await chair.client.call("floor", {"action": "grant", "participant_id": pid})
    await governor.stop()
    bots.remove(governor)

    async def ended() -> None:
        grants = await with_services(server, lambda s: s.floor.grants(CLI, meeting_id))
        assert [g.end_reason for g in grants] == ["yielded", "left"]

    await eventually(ended, timeout=10)
