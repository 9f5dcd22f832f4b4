"""Twelve bots in one session on a real server process, receiving through slots (issue 11).

Every bot publishes video and audio stamped with its identity (bots.stamp: the source is the CRC-32
of its participant id) and subscribes once with the default slots (stage + 8 thumbnails + 2 extra
voices). The bots speak in turn (one sends its speech loop, whose RTP audio-level extension the
server's dominant-speaker detector reads, the others their silence loop); meanwhile two bots join
late and one leaves. Checked:

* each subscriber's stage (the ``slot`` events' map of stage-video and stage-audio) follows the
  speaker, for every subscriber but the speaker itself (who never receives its own streams);
* every stamped video frame on every slot of every subscriber carries the identity of the
  participant the slot map named for that slot at the frame's RTP timestamp, and so does every
  decoded stage picture of the decoding subscribers (matched to its frame through its pts);
* no offer reaches a connected subscriber while others join and leave (each bot negotiated its
  receiving connection exactly once).

Cost, for a 2-core machine: 320x180 video at 150 kbit/s; every subscriber decodes its stage (audio
and video, ``decode="stage"``) while its 8 thumbnails and 2 extra voices are counted and checked
from RTP only (decoding 12 x 11 streams in this one process next to the server would be too heavy).
About 25 s here (one run: 18 s from the first join to the verdict). Every wait polls with a
timeout; there is no fixed sleep on which a verdict depends. aiortc's decoder fails on a frame now
and then (seen once per run or so, around switches): tolerated, at most one per stage switch.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from server_process import ServerProcess

from bots.bot import Bot, BotOptions
from bots.media_files import MediaParams, PreEncodedMedia, load_media
from bots.report import StreamReport
from meetings.policy import Caller

SITES = 12
FIRST = 10  # in the session from the start; the last two join during the turns
DECODING = tuple(f"site{i:02d}" for i in range(SITES))  # subscribers decoding their stage (all of them)
LEAVER = "site05"
TURN_TIMEOUT = 25.0

pytestmark = pytest.mark.timeout(170)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # No site budgets: twelve bots in one Python process on two cores fall behind their own sockets and
    # report a third of their packets lost (the server NACK counts show the links lose nothing); a
    # budget would rightly cut their video, and this test is about slots and switches, not links.
    process = ServerProcess(Path(tmp_path_factory.mktemp("twelve")) / "data",
                            env={"CABINET_MEDIA__BUDGET_ENABLED": "false"}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def small_media(tmp_path_factory: pytest.TempPathFactory) -> PreEncodedMedia:
    return load_media(MediaParams(width=320, height=180, video_bitrate=150_000), tmp_path_factory.mktemp("media"))


async def mint_tokens(server: ServerProcess, count: int) -> list[str]:
    """One account per site (the server keeps one connection per person), invited to the demo's
    cabinet session; a join token each."""
    services = server.services()
    cli = Caller.cli()
    try:
        meeting = next(m for m in await services.meetings.list_visible(cli) if m.kind.value == "cabinet_session")
        offices = [o for o in await services.offices.list(cli) if o.kind.value in ("province", "capital", "ministry")]
        people = [await services.people.create(
            cli, username=f"slots.site{i:02d}", full_name=f"Slots site {i}", office_id=offices[i % len(offices)].id,
            roles=["delegate"], password=secrets.token_urlsafe(18)) for i in range(count)]
        await services.meetings.invite(cli, meeting.id, person_ids=[p.id for p in people])
        return [services.meetings.signer.mint(meeting_id=meeting.id, person_id=p.id, office_id=p.office_id,
                                              roles=tuple(r.value for r in p.roles))[0] for p in people]
    finally:
        await services.db.dispose()


@pytest.fixture
async def bots() -> AsyncIterator[dict[str, Bot]]:
    made: dict[str, Bot] = {}
    yield made
    await asyncio.gather(*(asyncio.wait_for(bot.stop(), 20) for bot in made.values()), return_exceptions=True)


def stage_video(bot: Bot) -> StreamReport:
    return next(s for s in bot.report().streams if s.slot_id == "stage-video")


async def test_twelve_bots_stage_follows_the_speaker_and_every_frame_is_who_the_slot_map_says(
        server: ServerProcess, small_media: PreEncodedMedia, bots: dict[str, Bot],
        caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    tokens = await mint_tokens(server, SITES)

    async def start(i: int) -> Bot:
        name = f"site{i:02d}"
        bot = Bot(BotOptions(url=server.url, token=tokens[i], name=name, speaking=False, reconnect=False,
                             lean=name not in DECODING, decode="stage", timeout=30), small_media)
        bots[name] = bot
        await asyncio.wait_for(bot.start(), 40)
        return bot

    for i in range(FIRST):
        await start(i)
    pid = {name: bot.client.participant_id for name, bot in bots.items()}

    watched: dict[str, int] = {}  # turns each bot saw someone else take its stage

    def present() -> list[Bot]:
        return [bot for bot in bots.values() if bot.state == "joined"]

    async def turn(speaker: Bot) -> None:
        """``speaker`` speaks, the others are silent, until every other subscriber's stage carries it."""
        for bot in present():
            if bot is not speaker:
                watched[bot.options.name] = watched.get(bot.options.name, 0) + 1
        for bot in present():
            await bot.set_speaking(bot is speaker)
        me = speaker.client.participant_id

        def staged() -> bool:
            return all(bot.client.slot_map.get("stage-video") == me and bot.client.slot_map.get("stage-audio") == me
                       for bot in present() if bot is not speaker)

        try:
            await wait_for(staged, timeout=TURN_TIMEOUT, interval=0.1)
        except AssertionError:
            lagging = {b.options.name: b.client.slot_map.get("stage-video") for b in present() if b is not speaker}
            raise AssertionError(f"stage did not follow {speaker.options.name} ({me}): {lagging}") from None
        assert speaker.client.slot_map.get("stage-video") != me  # nobody receives their own streams
        # The decoding subscribers decode the new speaker's pictures (checked once settled).
        watchers = [b for b in present() if b.options.name in DECODING and b is not speaker]
        decoded = {b.options.name: stage_video(b).decoded_frames for b in watchers}
        await wait_for(lambda: all(stage_video(b).decoded_frames >= decoded[b.options.name] + 15 for b in watchers),
                       timeout=TURN_TIMEOUT, interval=0.1)

    # Everyone receives everyone else (up to 1 + 8 videos): the slots are filled before the turns.
    await wait_for(lambda: all(sum(1 for v in bot.client.slot_map.values() if v) >= 1 + 8 + 1 + 2
                               for bot in present()), timeout=30, interval=0.2)

    for name in ("site03", "site00", "site07"):
        await turn(bots[name])
    # Two sites join during the session: nobody already in gets an offer; they speak in turn too.
    for i in range(FIRST, SITES):
        await start(i)
        pid[f"site{i:02d}"] = bots[f"site{i:02d}"].client.participant_id
    await turn(bots["site11"])
    # One leaves while another speaks.
    leaver = bots[LEAVER]
    await leaver.stop()
    await turn(bots["site01"])
    await turn(bots["site10"])
    await turn(bots["site02"])

    # Let the last frames settle (each is checked 2 s after it arrived), then read every report.
    decoding = [bot for bot in present() if bot.options.name in DECODING]
    checked_before = {bot.options.name: stage_video(bot).decoded_identity_checked for bot in decoding}
    await wait_for(lambda: all(stage_video(bot).decoded_identity_checked >= checked_before[bot.options.name] + 20
                               for bot in decoding), timeout=20, interval=0.2)
    for bot in bots.values():
        report = bot.report()
        name = bot.options.name
        assert report.offers_after_join == 0 and report.events.get("offer", 0) == 0, (name, report.errors)
        assert not [e for e in report.errors if "offer" in e], (name, report.errors)
        assert bot.subscriber is not None or bot is leaver
        if bot.subscriber is not None:
            assert bot.subscriber.negotiations == 1, name
        video = [s for s in report.streams if s.kind == "video"]
        for stream in video:
            assert stream.identity_mismatches == 0 and stream.decoded_identity_mismatches == 0, (
                name, stream.slot_id, stream.identity_mismatch_examples)
        assert sum(s.identity_checked for s in video) > 100, name
        assert sum(s.identity_unknown for s in video) <= 2, name  # frames no slot event covered: none expected
    for bot in decoding:
        stage = stage_video(bot)
        # Each decoding subscriber saw its stage switch at every turn it watched (its first
        # assignment counts too), and decoded pictures of each speaker, each matched to its stamp.
        assert stage.switches >= watched[bot.options.name], (bot.options.name, stage.switches, watched)
        assert stage.decoded_identity_checked >= 15 * watched[bot.options.name], stage
        # Pictures whose bar code disagrees with the stamp of their frame (matched exactly: the bot's
        # decoded pts is the RTP timestamp): 0 on a quiet machine and beside one busy process; on a
        # machine overloaded to real loss (two of these tests and a busy loop on 2 cores: 1.8 % lost,
        # frames missing) aiortc decodes wrong pictures after losses, up to ~30 %. A sanity bound only:
        # the identity checks above are the point.
        assert stage.index_mismatches <= 0.25 * stage.decoded_frames + 5, stage
    # aiortc fails to decode a frame now and then (seen around switches): at most one per switch.
    failures = sum(1 for r in caplog.records if "failed to decode" in r.getMessage())
    print(f"twelve bots: {time.monotonic() - started:.1f} s, aiortc decode failures {failures}, stage switches "
          f"{[stage_video(b).switches for b in decoding]}, decoded stage pictures checked "
          f"{[stage_video(b).decoded_identity_checked for b in decoding]}, index mismatches "
          f"{[stage_video(b).index_mismatches for b in decoding]}")
    assert failures <= sum(stage_video(b).switches for b in decoding)
    assert time.monotonic() - started < 150
