"""Signaling over real socket.io on loopback: tokens, validation, rate limits, rooms and negotiation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import socketio
from aiortc import RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from harness import LiveServer, make_config
from meetings.policy import Caller
from media.aiortc_seams import configure_ice
from sigclient import SigClient, loopback_pc

CLI = Caller.cli()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    config = make_config(tmp_path_factory.mktemp("sig"), **{"media.ice_bind_addresses": ["127.0.0.1"]})
    live = LiveServer(config).start()
    yield live
    live.stop()


class Tokens:
    def __init__(self, server: LiveServer) -> None:
        self.server = server

    async def __call__(self, username: str, kind: str = "cabinet_session") -> str:
        return await self.server.join_token(username, kind)


@pytest.fixture
def tokens(server: LiveServer) -> Tokens:
    return Tokens(server)


@pytest.fixture
async def clients(server: LiveServer) -> AsyncIterator[list[SigClient]]:
    made: list[SigClient] = []
    yield made
    for client in made:
        await client.close()


def client(server: LiveServer, made: list[SigClient]) -> SigClient:
    c = SigClient(server.url)
    made.append(c)
    return c


async def governor_and_chair(server: LiveServer, tokens: Tokens,
                             clients: list[SigClient]) -> tuple[SigClient, dict[str, Any], SigClient, dict[str, Any]]:
    """A governor and the chair, connected and joined: (governor, its join reply, chair, its join reply)."""
    governor, chair = client(server, clients), client(server, clients)
    await governor.connect(await tokens("governor"))
    await chair.connect(await tokens("chair"))
    return governor, await governor.call("join"), chair, await chair.call("join")


async def refused(server: LiveServer, token: Any) -> dict[str, Any]:
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    sio.on("connect_error", lambda data: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(server.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    await sio.disconnect()
    assert errors, "no connect_error received"
    return {"code": errors[0]["data"]["code"], "message": errors[0]["message"]}


async def test_bad_tokens_are_refused_at_connect_with_a_reason(server: LiveServer, tokens: Tokens) -> None:
    for token in (None, "", "garbage", "a.b", 12345, "x" * 5000):
        error = await refused(server, token)
        assert error["code"] == "token_invalid"
    good = await tokens("governor")
    payload, signature = good.split(".")
    assert (await refused(server, f"{payload}.{signature[::-1]}"))["message"] == "join token signature is invalid"
    # Expired: minted by a signer whose clock is two minutes behind.
    services = server.services()
    try:
        person = await services.people.find(CLI, "governor")
        meeting = next(m for m in await services.meetings.list_visible(CLI) if m.kind.value == "cabinet_session")
        old, _ = services.meetings.signer.mint(meeting_id=meeting.id, person_id=person.id, office_id=person.office_id,
                                               roles=("delegate",), now=time.time() - 300)
    finally:
        await services.db.dispose()
    assert (await refused(server, old))["message"] == "join token has expired"


async def test_uninvited_person_cannot_join_even_with_a_forged_meeting(server: LiveServer) -> None:
    """A correctly signed token for a meeting the person is not invited to is refused (re-checked in the DB)."""
    services = server.services()
    try:
        commander = await services.people.find(CLI, "commander")
        session = next(m for m in await services.meetings.list_visible(CLI) if m.kind.value == "cabinet_session")
        token, _ = services.meetings.signer.mint(meeting_id=session.id, person_id=commander.id,
                                                 office_id=commander.office_id, roles=("commander",))
    finally:
        await services.db.dispose()
    error = await refused(server, token)
    assert error == {"code": "token_invalid", "message": "not invited to this meeting"}


async def test_a_join_token_works_once(server: LiveServer, tokens: Tokens, clients: list[SigClient]) -> None:
    token = await tokens("chair")
    first = client(server, clients)
    await first.connect(token)
    assert (await refused(server, token))["message"] == "this join token has already been used"


async def test_malformed_messages_get_an_error_and_change_nothing(server: LiveServer, tokens: Tokens,
                                                                  clients: list[SigClient]) -> None:
    c = client(server, clients)
    await c.connect(await tokens("governor"))
    assert (await c.call("publish", {"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}))["error"]["code"] == "wrong_state"
    for payload in ("not an object", [1, 2], {"last_n": "nine"}, {"last_n": 99}, {"extra": 1}):
        reply = await c.call("join", payload)
        assert reply["ok"] is False and reply["error"]["code"] == "invalid", (payload, reply)
    assert (await c.call("no_such_event", {}))["error"]["code"] == "invalid"
    joined = await c.call("join", {})
    assert joined["ok"] and [p["participant_id"] for p in joined["roster"]] == [joined["participant_id"]]
    assert joined["me"]["office_code"] == "KH-17" and joined["permissions"] == {"publish": True, "moderate": False}
    bad_sdps = ["", "hello", "v=0\r\nthis is not sdp\r\n", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n",
                "v=0\r\nm=audio 9 RTP 0\r\na=\x00\r\n", "v=0\r\n" + "a=x\r\n" * 5000, {"sdp": 1}]
    for sdp in bad_sdps:
        reply = await c.call("publish", {"sdp": sdp})
        assert reply["error"]["code"] == "invalid", (sdp[:30] if isinstance(sdp, str) else sdp, reply)
    # Well-formed lines that aiortc cannot use: refused by negotiation, state unchanged.
    reply = await c.call("publish", {"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"})
    assert reply["ok"] is False and reply["error"]["code"] in ("negotiation_failed", "media_error")
    assert (await c.call("answer", {"sdp": "v=0\r\nm=audio 9 X 0\r\n", "revision": 1}))["error"]["code"] == "wrong_state"
    again = await c.call("mute", {"kind": "audio", "muted": True})
    assert again["ok"]


async def test_reserved_event_names_from_a_client_are_refused(server: LiveServer, tokens: Tokens,
                                                              clients: list[SigClient]) -> None:
    """Only python-socketio delivers connect/disconnect: a client's event of that name forges nothing."""
    governor, g, chair, _ = await governor_and_chair(server, tokens, clients)
    spare = await tokens("governor")
    forged_environ = {"REMOTE_ADDR": "203.0.113.66 (forged)", "HTTP_X_FORWARDED_FOR": "203.0.113.66"}
    reply = await governor.call("connect", forged_environ)
    assert reply["ok"] is False and reply["error"]["code"] == "invalid"
    reply = await governor.call("disconnect", "client namespace disconnect")
    assert reply["ok"] is False and reply["error"]["code"] == "invalid"
    # Still the same, joined participant: nobody was told it left, and it still acts and hears broadcasts.
    assert (await governor.call("raise_hand"))["ok"]
    await chair.wait_for("hands", lambda h: any(e["participant_id"] == g["participant_id"] for e in h["queue"]))
    assert not [e for e in chair.events["participant_left"] if e["participant_id"] == g["participant_id"]]
    assert (await governor.call("lower_hand"))["ok"]
    await governor.wait_for("hands", lambda h: not h["queue"])
    # The forged connect spent no token and made no connection: the spare token still works once.
    third = client(server, clients)
    await third.connect(spare)


async def test_media_sections_are_capped_before_any_parsing(server: LiveServer, tokens: Tokens,
                                                            clients: list[SigClient]) -> None:
    """A publish offer may carry at most 4 m-lines; an answer exactly as many as the server's offer."""
    governor, _, chair, _ = await governor_and_chair(server, tokens, clients)
    pc = loopback_pc()
    try:
        for _ in range(5):
            pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        five = pc.localDescription.sdp
    finally:
        await pc.close()
    reply = await governor.call("publish", {"sdp": five})
    assert reply["error"] == {"code": "invalid", "message": "sdp has 5 media sections; at most 4 are accepted"}
    # The offer that froze the server for 28.7 s (790 audio m-lines, 77 KB) is refused unread.
    head = five.partition("m=audio")[0]
    huge = head + "".join(f"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:{i}\r\na=sendonly\r\n"
                          f"a=rtpmap:111 opus/48000/2\r\n" for i in range(790))
    assert len(huge) < 256 * 1024 and huge.count("\n") < 4000
    reply = await governor.call("publish", {"sdp": huge})
    assert reply["error"] == {"code": "invalid", "message": "sdp has 790 media sections; at most 4 are accepted"}
    assert (await governor.publish(AudioStreamTrack(), VideoStreamTrack()))["ok"]  # state unchanged
    # An answer padded with media sections is refused; the real answer is still taken afterwards.
    offer = await chair.call("subscribe", {"videos": 0, "audios": 0})  # the stage alone: two m-lines
    assert offer["ok"] and offer["sdp"] and offer["sdp"].count("m=") == 2
    recv = loopback_pc()
    try:
        await recv.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        configure_ice(recv, ["127.0.0.1"], [])
        await recv.setLocalDescription(await recv.createAnswer())
        good = recv.localDescription.sdp
        padded = good + good[good.index("m=audio"):].replace("a=mid:", "a=mid:x") * 3
        reply = await chair.call("answer", {"sdp": padded, "revision": offer["revision"]})
        assert reply["error"] == {"code": "invalid", "message": "the answer has 8 media sections; the offer had 2"}
        assert (await chair.call("answer", {"sdp": good, "revision": offer["revision"]}))["ok"]
    finally:
        await recv.close()


async def test_oversized_messages_are_refused(server: LiveServer, tokens: Tokens, clients: list[SigClient]) -> None:
    c = client(server, clients)
    await c.connect(await tokens("chair"))
    await c.call("join")
    big = "v=0\r\n" + ("a=" + "x" * 200 + "\r\n") * 1400  # ~285 KB, above the 256 KiB limit
    try:
        reply = await c.call("publish", {"sdp": big}, timeout=5)
        assert reply["error"]["code"] == "invalid"
    except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
        pass  # the transport dropped the frame (and maybe the connection): also a refusal
    other = client(server, clients)
    await other.connect(await tokens("observer"))
    roster = (await other.call("join"))["roster"]
    assert all(p["participant_id"] for p in roster)


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose bucket never refills within a test: burst 5, then every message is refused."""
    config = make_config(tmp_path_factory.mktemp("sig-strict"), **{
        "media.ice_bind_addresses": ["127.0.0.1"], "signaling.rate_per_second": 0.0001,
        "signaling.rate_burst": 5, "signaling.flood_disconnect_after": 10})
    live = LiveServer(config).start()
    yield live
    live.stop()


async def test_a_flooding_client_is_refused_then_disconnected_with_a_reason(strict_server: LiveServer) -> None:
    c = SigClient(strict_server.url)
    disconnected = asyncio.Event()
    c.sio.on("closing", lambda data: c.events["closing"].append(data))
    c.sio.on("disconnect", lambda *reason: disconnected.set())
    try:
        await c.connect(await strict_server.join_token("secretariat"))
        assert (await c.call("join"))["ok"]  # 1 of the burst of 5
        replies = [await c.call("set_last_n", {"n": 3}) for _ in range(4 + 9)]
        assert [r["ok"] for r in replies] == [True] * 4 + [False] * 9
        assert {r["error"]["code"] for r in replies[4:]} == {"rate_limited"}
        assert not c.events["closing"] and c.sio.connected  # 9 refusals in a row: still connected
        last = await c.call("set_last_n", {"n": 3})  # the 10th refusal in a row is still answered...
        assert last["error"]["code"] == "rate_limited"
        await asyncio.wait_for(disconnected.wait(), 15)  # ...and then the server closes the connection
        assert c.events["closing"] == [{"code": "flooding", "message": c.events["closing"][0]["message"]}]
        assert "slow down" in c.events["closing"][0]["message"]
    finally:
        await c.close()


async def test_observer_may_not_publish(server: LiveServer, tokens: Tokens, clients: list[SigClient]) -> None:
    c = client(server, clients)
    await c.connect(await tokens("observer"))
    joined = await c.call("join")
    assert joined["permissions"]["publish"] is False
    reply = await c.publish(AudioStreamTrack())
    assert reply["error"]["code"] == "forbidden"


async def test_join_publish_subscribe_with_slots_and_leave(server: LiveServer, tokens: Tokens,
                                                           clients: list[SigClient]) -> None:
    """The receiving connection is negotiated once, at subscribe, with its slots; publishers coming and
    going only move producers between slots (``slot`` events), never another offer."""
    governor, g, chair, c = await governor_and_chair(server, tokens, clients)
    await governor.wait_for("participant_joined", lambda p: p["participant_id"] == c["participant_id"])
    subscribed = await chair.subscribe(videos=2, audios=1)
    assert subscribed["ok"] and subscribed["revision"] == 1
    assert [(s["slot_id"], s["kind"], s["stream_id"]) for s in subscribed["slots"]] == [
        ("stage-audio", "audio", "stage"), ("stage-video", "video", "stage"), ("video-0", "video", "video-0"),
        ("video-1", "video", "video-1"), ("audio-0", "audio", "audio-0")]
    assert subscribed["sdp"].count("m=") == 5
    assert [s["mid"] for s in subscribed["slots"]] == [str(i) for i in range(5)]
    published = await governor.publish(AudioStreamTrack(), VideoStreamTrack())
    assert published["ok"], published
    assert sorted(p["kind"] for p in published["producers"]) == ["audio", "video"]
    added = await chair.wait_for("track_added", lambda t: t["participant_id"] == g["participant_id"])
    assert added["kind"] in ("audio", "video")
    # The governor, the only publisher, goes on the chair's stage: both stage slots name them.
    video_on = await chair.wait_for("slot", lambda e: e["slot_id"] == "stage-video" and e["participant_id"])
    audio_on = await chair.wait_for("slot", lambda e: e["slot_id"] == "stage-audio" and e["participant_id"])
    for event in (video_on, audio_on):
        assert event["participant_id"] == g["participant_id"] and event["producer_id"] and event["sequence"] >= 1
    assert video_on["rtp_timestamp"] >= 0, "a video switch names the frame it starts at"
    assert audio_on["rtp_timestamp"] == -1, "an audio switch is announced at once"
    assert video_on["mid"] == "1" and audio_on["mid"] == "0"
    # Media actually flows through the SFU to the chair, on the stage's two tracks.
    video = next(t for t in chair.tracks if t.kind == "video")
    frame = await asyncio.wait_for(video.recv(), 20)
    assert frame.width > 0
    sink = MediaBlackhole()
    sink.addTrack(video)
    # Muting is broadcast.
    assert (await governor.call("mute", {"kind": "audio", "muted": True}))["ok"]
    muted = await chair.wait_for("mute_changed")
    assert muted == {"participant_id": g["participant_id"], "kind": "audio", "muted": True, "by": "self"}
    # The governor leaves: the chair sees them go, its stage slots go empty; no offer, ever.
    assert (await governor.call("leave"))["ok"]
    await chair.wait_for("participant_left", lambda p: p["participant_id"] == g["participant_id"])
    await chair.wait_for("track_removed", lambda t: t["participant_id"] == g["participant_id"])
    emptied = await chair.wait_for("slot", lambda e: e["slot_id"] == "stage-video" and e["producer_id"] is None)
    assert emptied["sequence"] > video_on["sequence"] and emptied["participant_id"] is None
    assert chair.events["offer"] == []
    # One negotiation per connection: a second answer or subscribe is refused.
    again = await chair.call("answer", {"sdp": chair.recv_pc.localDescription.sdp, "revision": 1})
    assert again["error"]["code"] == "wrong_state"
    assert (await chair.call("subscribe"))["error"]["code"] == "wrong_state"


async def test_the_sites_choice_its_view_and_the_link_states_it_is_told(server: LiveServer, tokens: Tokens,
                                                                          clients: list[SigClient]) -> None:
    """set_quality / set_view (signaling/links.py): bad input refused and nothing changed; the site's
    budget reports every slot's state (slot_state) and the room every site's link (links)."""
    governor, g, chair, c = await governor_and_chair(server, tokens, clients)
    for payload in ({"mode": "hd"}, {"mode": None}, {}, {"mode": "audio", "x": 1}):
        assert (await chair.call("set_quality", payload))["error"]["code"] == "invalid", payload
    assert (await chair.call("set_view", {"slots": {"video-0": {"visible": False}}}))["error"]["code"] == "wrong_state"
    subscribed = await chair.subscribe(videos=2, audios=1)
    assert subscribed["ok"]
    published = await governor.publish(AudioStreamTrack(), VideoStreamTrack())
    assert published["ok"], published
    bad_views = [{"slots": []}, {"slots": {"video-9": {"visible": False}}}, {"slots": {"video-0": {}}},
                 {"slots": {"video-0": {"visible": "no"}}}, {"slots": {"video-0": {"visible": True, "width": -1}}},
                 {"slots": {"video-0": {"visible": True, "depth": 3}}}, {"slots": {"bad id!": {"visible": True}}},
                 {"slots": {f"video-{i}": {"visible": True} for i in range(12)}}]
    for payload in bad_views:
        reply = await chair.call("set_view", payload)
        assert reply["ok"] is False and reply["error"]["code"] == "invalid", (payload, reply)
    state = await chair.wait_for("slot_state", lambda s: s["slots"]["stage-video"]["state"] == "active")
    assert state["mode"] == "auto" and state["estimate_kbps"] > 0
    assert state["slots"]["video-0"]["state"] == "empty", "one publisher: on the stage, no thumbnail"
    # The site chooses audio only: every video slot is paused on request.
    assert (await chair.call("set_quality", {"mode": "audio"}))["ok"]
    paused = await chair.wait_for("slot_state", lambda s: s["mode"] == "audio")
    assert paused["slots"]["stage-video"] == {"state": "paused_request", "layer": -1}
    assert paused["slots"]["stage-audio"]["state"] == "active"
    links = await governor.wait_for("links", lambda e: e["sites"].get(c["participant_id"], {}).get("mode") == "audio")
    assert links["sites"][c["participant_id"]]["state"] == "audio_only"
    # Nobody takes the governor's camera now (the chair, the only subscriber, chose audio only): after
    # 3 s its page is told to stop sending it.
    video_id = next(p["producer_id"] for p in published["producers"] if p["kind"] == "video")
    unwanted = await governor.wait_for("video_wanted", lambda e: e["producer_id"] == video_id, timeout=10)
    assert unwanted["wanted"] is False
    # Back to auto; the stage tile is hidden by the page: paused on request too.
    assert (await chair.call("set_quality", {"mode": "auto"}))["ok"]
    assert (await chair.call("set_view", {"slots": {"stage-video": {"visible": False, "width": 0}}}))["ok"]
    hidden = await chair.wait_for("slot_state", lambda s: s["mode"] == "auto"
                                  and s["slots"]["stage-video"]["state"] == "paused_request")
    assert hidden["slots"]["stage-audio"]["state"] == "active"
    assert (await chair.call("set_view", {"slots": {"stage-video": {"visible": True, "width": 640,
                                                                     "height": 360}}}))["ok"]
    await chair.wait_for("slot_state", lambda s: s["slots"]["stage-video"]["state"] == "active")
    wanted = await governor.wait_for("video_wanted", lambda e: e["wanted"] is True)
    assert wanted["producer_id"] == video_id
