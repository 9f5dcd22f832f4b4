"""bots.client / bots.bot end to end against a stand-in socket.io server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest

from conftest import Closer, wait_for
from fake_signaling import FakeSignaling

from bots.bot import Bot, BotOptions
from bots.cli import main_async
from bots.client import SignalingClient
from bots.errors import SignalingError
from bots.media_files import PreEncodedMedia


@pytest.fixture
async def server(sfu: Closer) -> AsyncIterator[FakeSignaling]:
    signaling = FakeSignaling(sfu.router, {"tok-alice": "alice", "tok-bob": "bob", "tok-carol": "carol"})
    await signaling.start()
    try:
        yield signaling
    finally:
        await asyncio.wait_for(signaling.stop(), 10)


async def test_refused_token_raises_the_servers_code(server: FakeSignaling) -> None:
    client = SignalingClient(server.url, "nope", timeout=5)
    with pytest.raises(SignalingError) as info:
        await client.connect()
    assert info.value.code == "token_invalid"
    assert "not valid" in info.value.message


async def test_bots_publish_and_subscribe_through_signaling(server: FakeSignaling, media: PreEncodedMedia) -> None:
    lean = Bot(BotOptions(url=server.url, token="tok-carol", name="carol", publish=False, lean=True, videos=2,
                          audios=1), media)
    alice = Bot(BotOptions(url=server.url, token="tok-alice", name="alice", subscribe=False), media)
    bob = Bot(BotOptions(url=server.url, token="tok-bob", name="bob", speaking=False), media)
    try:
        await asyncio.wait_for(lean.start(), 15)  # subscribes first: its slots fill as others publish
        await asyncio.wait_for(alice.start(), 15)
        await asyncio.wait_for(bob.start(), 15)  # full subscriber (default slots), publishes silence
        assert lean.client.participant_id == "carol"
        carol_sid = next(sid for sid, p in server.peers.items() if p.participant_id == "carol")
        assert server.peers[carol_sid].subscribe_requests == [{"videos": 2, "audios": 1}]
        assert [s["slot_id"] for s in lean.client.slots] == ["stage-audio", "stage-video", "video-0", "video-1",
                                                              "audio-0"]

        def receiving() -> bool:
            carried = [s for s in lean.report().streams + bob.report().streams if s.packets > 10]
            return len(carried) == 6  # carol: alice and bob, audio and video; bob: alice's

        await wait_for(receiving, timeout=15)
        await wait_for(lambda: lean.client.dominant_speaker == "alice", timeout=8)
        await wait_for(lambda: lean.client.slot_map.get("stage-video") == "alice"
                       and lean.client.slot_map.get("video-0") == "bob", timeout=8)
        report = bob.report()
        assert {s.participant_id for s in report.streams if s.packets} == {"alice"}
        assert len(report.streams) == 1 + 8 + 1 + 2  # every slot is a stream, carrying or not
        for stream in report.streams:
            if stream.packets:
                assert stream.slot_id in ("stage-audio", "stage-video") and stream.loss_percent == 0
                assert stream.latency_ms_p50 is not None and 0 <= stream.latency_ms_p50 < 3000
        await wait_for(lambda: next(s for s in bob.report().streams if s.slot_id == "stage-video")
                       .decoded_identity_checked >= 5, timeout=10)
        carol = lean.report()
        carried = {s.slot_id: s.participant_id for s in carol.streams if s.packets}
        assert carried == {"stage-audio": "alice", "stage-video": "alice", "video-0": "bob", "audio-0": "bob"}
        assert carol.slots["stage-video"] == "alice" and carol.events.get("slot", 0) >= 4
        for stream in carol.streams + bob.report().streams:
            assert stream.identity_mismatches == 0 and stream.decoded_identity_mismatches == 0, stream
        assert sum(s.identity_checked for s in carol.streams) > 0
        # The server never renegotiates; an offer that still arrives is an error, never answered.
        assert carol.offers_after_join == 0 and not carol.errors and not report.errors
        assert lean.subscriber is not None and lean.subscriber.negotiations == 1
        await server.stray_offer("carol")
        await wait_for(lambda: lean.report().offers_after_join == 1, timeout=5)
        assert "after the join" in lean.report().errors[0] and lean.subscriber.negotiations == 1
        assert json.loads(carol.to_json())["streams"][0]["slot_id"] == "stage-audio"
        assert "latency p50/95/99" in carol.summary() and "offers after join: 0" in carol.summary()
    finally:
        for bot in (bob, alice, lean):
            await asyncio.wait_for(bot.stop(), 10)


async def test_cli_prints_a_json_report(server: FakeSignaling, media: PreEncodedMedia, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert media.path is not None
    out = io.StringIO()
    code = await asyncio.wait_for(
        main_async(["--url", server.url, "--token", "tok-alice", "--publish", "--seconds", "1", "--json",
                    "--cache-dir", str(media.path.parent)], stdout=out),
        30,
    )
    report = json.loads(out.getvalue())
    assert code == 0, report
    assert report["mode"] == "publish" and report["publish"]["audio_packets"] > 20
    assert report["participant_id"] == "alice"


async def test_cli_refused_token_exits_nonzero(server: FakeSignaling) -> None:
    out = io.StringIO()
    code = await asyncio.wait_for(main_async(["--url", server.url, "--token", "bad", "--subscribe", "--seconds", "0.1"], stdout=out), 20)
    assert code == 1 and "token_invalid" in out.getvalue()


async def test_cli_needs_a_token_or_a_login() -> None:
    assert await main_async(["--url", "http://127.0.0.1:9", "--seconds", "0"], stdin=io.StringIO("")) == 2


def test_a_bot_answer_negotiates_neither_remb_nor_red() -> None:
    from bots.subscriber import bot_answer

    sdp = ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96 63\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\n"
           "a=fmtp:63 96/96\r\nm=video 9 UDP/TLS/RTP/SAVPF 97 98\r\na=rtpmap:97 VP8/90000\r\n"
           "a=rtcp-fb:97 nack\r\na=rtcp-fb:97 goog-remb\r\na=rtpmap:98 rtx/90000\r\n")
    assert bot_answer(sdp) == ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 opus/48000/2\r\n"
                               "m=video 9 UDP/TLS/RTP/SAVPF 97 98\r\na=rtpmap:97 VP8/90000\r\n"
                               "a=rtcp-fb:97 nack\r\na=rtpmap:98 rtx/90000\r\n")
