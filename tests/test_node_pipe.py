"""A provincial node's media pipe (issue 14), with the centre and the node as two servers (the node a
real process) and bots on each: media crosses both ways, one copy whatever the number of viewers at
the node, and a node's forged requests for another command's meeting or people are refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from unittest.mock import ANY
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot_fixtures import bots, small_media  # noqa: F401  (fixtures)
from bots.bot import Bot, BotOptions
from bots.errors import SignalingError
from bots.login import LoginTokenSource
from bots.media_files import PreEncodedMedia
from harness import Client, LiveServer, make_config
from meetings.demo import DEMO_PASSWORD
from meetings.models import Meeting, MeetingKind, Recording
from provincial_nodes.centre_pipes import CENTRE_PIPES, CentrePipes
from server_process import ServerProcess
from web.views.nodes import node_links
from test_node_control import register
from test_node_process import CLI, node_process, register_node, signs_in

SESSION = 1  # the demo's weekly session: KH-17 (the governor's province) is invited


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(make_config(tmp_path / "centre")).start()
    try:
        yield server
    finally:
        server.stop()


#: Accounts of the governor's office besides the governor, made at the centre (the node copies them).
VIEWERS = ("kh17-aide-1", "kh17-aide-2")


async def add_office_people(centre: LiveServer) -> None:
    services = centre.services()
    try:
        office = next(o for o in await services.offices.list(CLI) if o.code == "KH-17")
        for username in VIEWERS:
            await services.people.create(CLI, username=username, full_name=f"Aide {username[-1]}",
                                         office_id=office.id, roles=["delegate"], password=DEMO_PASSWORD)
    finally:
        await services.db.dispose()


async def start_node(tmp_path: Path, centre: LiveServer) -> ServerProcess:
    credential_file = tmp_path / "node.credential"
    await add_office_people(centre)
    await register_node(centre, "KH-17", credential_file)
    process = node_process(tmp_path, centre, credential_file, "KH-17").start()
    for _ in range(200):  # the first snapshot (the office's accounts) arrives within a second or two
        if await signs_in(process.url, VIEWERS[-1]):
            return process
        await asyncio.sleep(0.1)
    process.stop()
    raise AssertionError(f"the node never had the office's accounts: {process.log_tail()}")


@pytest.fixture
async def node(tmp_path: Path, centre: LiveServer) -> AsyncIterator[ServerProcess]:
    process = await start_node(tmp_path, centre)
    try:
        yield process
    finally:
        process.stop()


def pipes(centre: LiveServer) -> CentrePipes:
    assert centre.app is not None
    return centre.app[CENTRE_PIPES]


async def start_bot(bots: dict[str, Bot], media: PreEncodedMedia, url: str, username: str, name: str, *,
                    publish: bool, subscribe: bool, meeting: int = SESSION) -> Bot:
    bot = Bot(BotOptions(url=url, token_source=LoginTokenSource(url, username, DEMO_PASSWORD, meeting), name=name,
                         publish=publish, subscribe=subscribe, lean=not publish, videos=2, audios=0, timeout=30),
              media)
    bots[name] = bot
    await asyncio.wait_for(bot.start(), 40)
    return bot


def frames_from(bot: Bot, participant_id: str, kind: str = "video") -> int:
    return sum(s.frames_received for s in bot.report().streams if s.participant_id == participant_id and s.kind == kind)


async def until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def test_media_crosses_the_pipe_both_ways_once_whatever_the_viewers_at_the_node(
        centre: LiveServer, node: ServerProcess, bots: dict[str, Bot], small_media: PreEncodedMedia) -> None:
    chair = await start_bot(bots, small_media, centre.url, "chair", "chair", publish=True, subscribe=False)
    viewer = await start_bot(bots, small_media, node.url, "governor", "governor", publish=True, subscribe=True)
    await until(lambda: frames_from(viewer, chair.client.participant_id) > 30, 30,
                "the chair's camera (at the centre) reaches the governor (at the node)")
    stream = next(s for s in viewer.report().streams if s.participant_id == chair.client.participant_id)
    assert stream.identity_mismatches == 0, "the same participant id on both sides: the stamps agree"

    secretariat = await start_bot(bots, small_media, centre.url, "secretariat", "secretariat",
                                  publish=False, subscribe=True)
    await until(lambda: frames_from(secretariat, viewer.client.participant_id) > 30, 30,
                "the governor's camera (at the node) reaches the secretariat (at the centre)")
    assert any(s.participant_id == viewer.client.participant_id for s in secretariat.report().streams)
    room = pipes(centre).rooms.rooms[SESSION]
    governor_there = room.participants[viewer.client.participant_id]
    assert governor_there.via is not None and governor_there.grant.office_code == "KH-17"
    assert viewer.client.participant_id in room.floor.recorder.by_participant, "present, for KH-17, at the centre"

    # One WAN copy: the bytes the centre sends the node per second, with one viewer there and with three.
    link = next(iter(pipes(centre).links.values()))

    async def rate(seconds: float = 4.0) -> float:
        before = link.pipe.sender.stats.bytes_sent
        await asyncio.sleep(seconds)
        return (link.pipe.sender.stats.bytes_sent - before) / seconds

    one = await rate()
    for username in VIEWERS:
        await start_bot(bots, small_media, node.url, username, username, publish=False, subscribe=True)
    for username in VIEWERS:
        await until(lambda: frames_from(bots[username], chair.client.participant_id) > 15, 20,
                    f"the chair's camera reaches {username} at the node")
    three = await rate()
    print(f"WAN bytes centre->node: {one:.0f} B/s with one viewer at the node, {three:.0f} B/s with three")
    assert one > 10_000, f"the chair's media crosses: {one:.0f} B/s"
    assert abs(three - one) / one < 0.10, f"one WAN copy: {one:.0f} B/s with one viewer, {three:.0f} with three"
    assert link.transport is not None and link.transport.stats.rejected == 0

    # The channel is cut (the centre drops it, as a WAN cut ends it): the node redials by itself, a new
    # pipe with new keys carries the same participants and producers again, both ways.
    chair_frames, governor_frames = (frames_from(viewer, chair.client.participant_id),
                                     frames_from(secretariat, viewer.client.participant_id))
    interval = room.floor.recorder.by_participant[viewer.client.participant_id]
    cut_at = asyncio.get_running_loop().time()
    await cut_channels(centre)
    await until(lambda: frames_from(viewer, chair.client.participant_id) > chair_frames + 15
                and frames_from(secretariat, viewer.client.participant_id) > governor_frames + 15, 20,
                "media flows both ways again after the channel is back")
    recovered = asyncio.get_running_loop().time() - cut_at
    print(f"media both ways again {recovered:.1f} s after the channel was cut (redial backoff 1 s included)")
    assert pipes(centre).links and next(iter(pipes(centre).links.values())) is not link, "a new pipe"
    assert recovered < 10
    # Back within the grace period: the same participant, the same attendance interval, no departure.
    assert room.participants[viewer.client.participant_id] is governor_there and not governor_there.reconnecting
    assert room.floor.recorder.by_participant[viewer.client.participant_id] is interval and interval.left_at is None
    services = centre.services()
    try:  # the cut is marked in the audit trail: what it carried, how long it lasted
        events = {e.action: json.loads(e.details)
                  for e in await services.audit.recent(CLI, limit=50, action_prefix="node.link")}
    finally:
        await services.db.dispose()
    assert events["node.link_lost"]["meetings"] == [SESSION] and events["node.link_lost"]["people"] == 3
    assert 0 < events["node.link_restored"]["outage_seconds"] < 10

    # The secretariat's console shows the link: its media both ways, its round trip, the reconnect.
    await asyncio.sleep(6)  # a rate interval, and a round trip measured (every 5 s)
    async with Client(centre.url) as browser:
        await browser.login("secretariat")
        status, page = await browser.page("/nodes")
    assert status == 200
    row = page[page.index('<tr data-node='):page.index("</tr>", page.index('<tr data-node='))]
    assert "To the node" in row and "From the node" in row and "kbit/s" in row
    assert re.search(r"To the node</dt><dd>(\d+) kbit/s, 2 streams", row), row  # the chair's camera and voice
    assert re.search(r"Round trip</dt><dd>[\d.]+ ms", row), row
    assert "Reconnects: 1" in row and "last outage" in row


async def cut_channels(centre: LiveServer) -> None:
    """End every node's control channel from the centre's side (its loop, its thread)."""
    assert centre.app is not None and centre._loop is not None
    links = node_links(centre.app)

    async def cut() -> None:
        for node_link in list(links.links.values()):
            await node_link.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"cut")

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(cut(), centre._loop))


async def briefing_id(centre: LiveServer) -> int:
    """Military Region 4's briefing (KH-17 is not invited)."""
    services = centre.services()
    try:
        async with services.db.read() as session:
            return int(await session.scalar(select(Meeting.id).where(Meeting.kind == MeetingKind.BRIEFING)))
    finally:
        await services.db.dispose()


async def person_ids(centre: LiveServer, *usernames: str) -> list[int]:
    services = centre.services()
    try:
        return [(await services.people.find(CLI, name)).id for name in usernames]
    finally:
        await services.db.dispose()


async def next_frame(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5.0) -> dict:  # type: ignore[type-arg]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        frame = await ws.receive_json(timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        if frame["type"] == kind:
            return frame  # type: ignore[no-any-return]


async def test_a_node_cannot_have_another_commands_meeting_people_or_streams(
        centre: LiveServer, bots: dict[str, Bot], small_media: PreEncodedMedia) -> None:
    _, credential = await register(centre, "KH-17", "Siem Reap hall")
    governor, commander = await person_ids(centre, "governor", "commander")
    briefing = await briefing_id(centre)
    # The commander briefs Military Region 4 at the centre: a room with a camera the node must never get.
    await start_bot(bots, small_media, centre.url, "commander", "commander", publish=True, subscribe=False,
                    meeting=briefing)
    rooms = pipes(centre).rooms.rooms
    briefing_streams = sorted(rooms[briefing].router.producers)
    assert briefing_streams

    def table(meeting: int, person: int, tracks: list | None = None) -> dict:  # type: ignore[type-arg]
        return {"type": "pipe_table", "meeting_id": meeting, "tracks": tracks or [],
                "participants": [{"participant_id": f"p{person}-abc123", "person_id": person}]}

    async with aiohttp.ClientSession() as http, http.ws_connect(
            centre.url + "/nodes/control", headers={"Authorization": f"Bearer {credential}"}) as ws:
        hello = await next_frame(ws, "hello")
        assert hello["pipe"]["port"] > 0 and set(hello["pipe"]["keys"]) == {"centre_to_node", "node_to_centre"}
        link = pipes(centre).links[hello["node"]["id"]]

        await ws.send_json(table(briefing, governor))  # another command's briefing
        refused = await next_frame(ws, "pipe_refused")
        assert refused["meeting_id"] == briefing and refused["message"] == "no such meeting"
        assert briefing not in link.shares and all(p.via is None for p in rooms[briefing].participants.values())

        await ws.send_json(table(SESSION, commander))  # a person of another office
        refused = await next_frame(ws, "pipe_refused")
        assert refused["meeting_id"] == SESSION and SESSION not in link.shares
        assert SESSION not in rooms, "a refused table opens no room"
        await ws.send_json({"type": "pipe_table", "meeting_id": SESSION, "tracks": [],
                            "participants": [{"participant_id": f"p{commander}-abc123", "person_id": governor}]})
        assert (await next_frame(ws, "pipe_refused"))["meeting_id"] == SESSION, "an id naming someone else"

        # Its own people in its own meeting: carried; the centre answers with its own table.
        await ws.send_json(table(SESSION, governor))
        answer = await next_frame(ws, "pipe_table")
        assert answer["meeting_id"] == SESSION
        seen = rooms[SESSION].participants[f"p{governor}-abc123"].public()
        assert seen["office_code"] == "KH-17" and seen["via"] == "KH-17"
        assert seen["full_name"] != "" and seen["roles"] == ["delegate"], "the centre's own record of them"

        # Wants naming the briefing's streams, under the session or under the briefing: nothing is tapped.
        await ws.send_json({"type": "pipe_wants", "meeting_id": SESSION, "producer_ids": briefing_streams})
        await ws.send_json({"type": "pipe_wants", "meeting_id": briefing, "producer_ids": briefing_streams})
        await ws.send_json({"type": "ping"})
        await next_frame(ws, "pong")
        assert not link.pipe.sender.taps, "no stream of another command's briefing crosses"
        assert link.refusals == 3
        await ws.send_json({"type": "bye"})  # the node stops (a cut would keep its people, reconnecting)

    await until(lambda: SESSION not in rooms, 5, "the node's meeting room closes when its pipe goes")


def voice_packets(listener: Bot, speaker: Bot) -> int:
    return sum(s.packets for s in listener.report().streams
               if s.kind == "audio" and s.participant_id == speaker.client.participant_id)


async def test_the_centre_s_floor_decides_what_the_session_hears_of_a_node_s_governor(
        tmp_path: Path, centre: LiveServer, bots: dict[str, Bot], small_media: PreEncodedMedia) -> None:
    chair = await start_bot(bots, small_media, centre.url, "chair", "chair", publish=True, subscribe=False)
    assert (await chair.client.call("session", {"action": "open"}))["session"]["state"] == "open"
    node = await start_node(tmp_path, centre)  # its copy says the session is open: its room defers the floor
    try:
        governor = await start_bot(bots, small_media, node.url, "governor", "governor", publish=True,
                                   subscribe=False)
        aide = await start_bot(bots, small_media, node.url, VIEWERS[0], VIEWERS[0], publish=False, subscribe=True)
        listener = await start_bot(bots, small_media, centre.url, "observer", "observer", publish=False,
                                   subscribe=True)
        await until(lambda: voice_packets(aide, governor) > 50, 20, "the governor's hall hears the governor")
        await until(lambda: frames_from(listener, governor.client.participant_id) > 15, 20,
                    "the governor's camera reaches the centre")
        await asyncio.sleep(1.0)
        before = voice_packets(listener, governor)
        await asyncio.sleep(2.0)
        assert voice_packets(listener, governor) - before <= 2, "without the floor the session does not hear them"

        heard: list[tuple[str, object]] = []
        aide.client.listeners.append(lambda name, data: heard.append((name, data)))
        # The governor raises a hand in the hall: it is in the chair's queue at the centre.
        chair_queue: list[list[str]] = []
        chair.client.listeners.append(lambda name, data: chair_queue.append(
            [h["participant_id"] for h in data["queue"]]) if name == "hands" else None)  # type: ignore[index]
        await governor.client.call("raise_hand", {})
        await until(lambda: chair_queue[-1:] == [[governor.client.participant_id]], 10,
                    "the governor's hand raised at the node is in the chair's queue")
        granted = await chair.client.call("floor", {"action": "grant", "participant_id": governor.client.participant_id})
        assert granted["floor"]["holder"]["participant_id"] == governor.client.participant_id
        await until(lambda: any(name == "floor" and (data.get("holder") or {}).get("participant_id")  # type: ignore[union-attr]
                                == governor.client.participant_id for name, data in heard), 10,
                    "the hall's pages at the node show that the governor holds the session's floor")
        before = voice_packets(listener, governor)
        await until(lambda: voice_packets(listener, governor) - before > 50, 20,
                    "with the floor, the session hears the node's governor")
        node_queues = [data["queue"] for name, data in heard if name == "hands"]  # type: ignore[index]
        assert node_queues and node_queues[-1] == [], "the hall's queue: the hand went down with the floor"
        lowered = chair_queue.index([], chair_queue.index([governor.client.participant_id]))
        assert [governor.client.participant_id] not in chair_queue[lowered:], \
            f"the chair's queue: down, and not raised again by a table from before the floor: {chair_queue}"

        # The governor yields from their page at the node: the centre's floor ends.
        floors: list[dict] = []  # type: ignore[type-arg]
        chair.client.listeners.append(lambda name, data: floors.append(data) if name == "floor" else None)  # type: ignore[arg-type]
        assert (await governor.client.call("floor", {"action": "yield"}))["relayed"] is True
        await until(lambda: bool(floors) and floors[-1]["holder"] is None and floors[-1].get("ended") == "yielded",
                    10, "the session's floor ends as the governor yields in the hall")
    finally:
        node.stop()


async def test_a_node_s_people_wait_in_the_centre_s_lobby_and_their_streams_follow_them_in(
        centre: LiveServer, bots: dict[str, Bot], small_media: PreEncodedMedia) -> None:
    _, credential = await register(centre, "KH-17", "Siem Reap hall")
    (governor,) = await person_ids(centre, "governor")
    chair = await start_bot(bots, small_media, centre.url, "chair", "chair", publish=True, subscribe=False)
    await chair.client.call("moderate", {"action": "lobby_on"})
    participant_id = f"p{governor}-0a0b0c"
    camera = {"producer_id": "producer-node-1", "participant_id": participant_id, "stream_id": "s1", "kind": "video",
              "mid": "1", "mime_type": "video/VP8", "clock_rate": 90000, "channels": None, "payload_type": 96,
              "ssrc": 4242, "ext_ids": {"mid": 1, "audio_level": 2, "abs_send_time": 3}, "paused": False}
    rooms = pipes(centre).rooms.rooms
    async with aiohttp.ClientSession() as http, http.ws_connect(
            centre.url + "/nodes/control", headers={"Authorization": f"Bearer {credential}"}) as ws:
        await next_frame(ws, "hello")
        await ws.send_json({"type": "pipe_table", "meeting_id": SESSION, "tracks": [camera],
                            "participants": [{"participant_id": participant_id, "person_id": governor}]})
        await until(lambda: participant_id in rooms[SESSION].moderation.lobby, 5, "the governor waits in the lobby")
        assert "producer-node-1" not in rooms[SESSION].router.producers, "no stream before they are let in"
        await chair.client.call("moderate", {"action": "admit", "participant_id": participant_id})
        await until(lambda: "producer-node-1" in rooms[SESSION].router.producers, 5,
                    "the governor's camera follows them in (the table applied again)")
        assert rooms[SESSION].participants[participant_id].via is not None
        await ws.send_json({"type": "bye"})


async def test_after_a_cut_the_node_says_who_left_meanwhile_and_their_attendance_ends_then(
        centre: LiveServer, bots: dict[str, Bot], small_media: PreEncodedMedia) -> None:
    await add_office_people(centre)
    _, credential = await register(centre, "KH-17", "Siem Reap hall")
    governor, aide, late = await person_ids(centre, "governor", VIEWERS[0], VIEWERS[1])
    stays, leaves, comes = f"p{governor}-0a0a0a", f"p{aide}-0b0b0b", f"p{late}-0c0c0c"
    headers = {"Authorization": f"Bearer {credential}"}
    rooms = pipes(centre).rooms.rooms

    def table(*people: tuple[str, int]) -> dict:  # type: ignore[type-arg]
        return {"type": "pipe_table", "meeting_id": SESSION, "tracks": [],
                "participants": [{"participant_id": pid, "person_id": person} for pid, person in people]}

    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(centre.url + "/nodes/control", headers=headers) as ws:
            await next_frame(ws, "hello")
            await ws.send_json(table((stays, governor), (leaves, aide)))
            await until(lambda: SESSION in rooms and leaves in rooms[SESSION].participants, 5, "both at the centre")
            recorder = rooms[SESSION].floor.recorder
            staying, leaving = recorder.by_participant[stays], recorder.by_participant[leaves]
        # The WAN is cut (no goodbye): both stay, reconnecting. The aide leaves the hall during the cut.
        await until(lambda: rooms[SESSION].participants[leaves].reconnecting, 5, "the centre holds them")
        await asyncio.sleep(0.5)
        left_at = dt.datetime.now(dt.UTC)  # the aide leaves the hall, and another arrives, during the cut
        await asyncio.sleep(0.5)
        came_at = dt.datetime.now(dt.UTC)
        await asyncio.sleep(1.0)
        async with http.ws_connect(centre.url + "/nodes/control", headers=headers) as ws:
            await next_frame(ws, "hello")
            await ws.send_json({"type": "pipe_departed", "meeting_id": SESSION,
                                "departed": {leaves: left_at.isoformat()}})
            reconnected = table((stays, governor), (comes, late))
            reconnected["participants"][1]["joined_at"] = came_at.isoformat()
            await ws.send_json(reconnected)
            await until(lambda: leaves not in rooms[SESSION].participants
                        and not rooms[SESSION].participants[stays].reconnecting, 5, "the node's word taken")
            assert recorder.by_participant[stays] is staying and staying.left_at is None, "one interval throughout"
            assert leaving.left_at == left_at and leaving.end_reason == "left", "ended when they left, not now"
            await until(lambda: comes in recorder.by_participant, 5, "the newcomer is at the centre")
            assert recorder.by_participant[comes].joined_at == came_at, "present from when they joined the hall"
            await ws.send_json({"type": "bye"})


async def node_recordings(node: ServerProcess) -> list[Recording]:
    services = node.services()
    try:
        async with services.db.read() as session:
            return list((await session.scalars(select(Recording).where(Recording.meeting_id == SESSION))).all())
    finally:
        await services.db.dispose()


async def eventually(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    """``await check()`` until it is truthy; its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.2)
    return value


async def chair_and_governor(centre: LiveServer, node: ServerProcess, bots: dict[str, Bot], media: PreEncodedMedia,
                             *, governor_watches: bool) -> tuple[Bot, Bot]:
    """The chair at the centre, the governor at the node, once the governor is in the centre's room too."""
    chair = await start_bot(bots, media, centre.url, "chair", "chair", publish=True, subscribe=False)
    governor = await start_bot(bots, media, node.url, "governor", "governor", publish=True, subscribe=governor_watches)
    rooms = pipes(centre).rooms.rooms
    await until(lambda: SESSION in rooms and governor.client.participant_id in rooms[SESSION].participants, 20,
                "the governor is at the centre")
    return chair, governor


async def test_the_node_records_its_hall_with_the_centre_s_session_and_its_copy_fills_the_centre_s_gap(
        centre: LiveServer, node: ServerProcess, bots: dict[str, Bot], small_media: PreEncodedMedia) -> None:
    chair, governor = await chair_and_governor(centre, node, bots, small_media, governor_watches=True)
    rooms = pipes(centre).rooms.rooms
    assert not await node_recordings(node), "nothing is recorded before the session opens"
    heard: list[tuple[str, object]] = []
    governor.client.listeners.append(lambda name, data: heard.append((name, data)))

    # The centre opens the session: the node's room follows and records its hall (the governor's tracks).
    await chair.client.call("session", {"action": "open"})
    [copy] = await eventually(lambda: node_recordings(node), 10, "the node records as the session opens")
    assert copy.state.value == "recording"
    await until(lambda: ("session", {"state": "open", "opened_at": ANY, "closed_at": None, "run_by_host": True}) in heard, 10,
                f"the governor's page at the node says the session is open: {[h for h in heard if h[0] != 'quality']}")
    await asyncio.sleep(4)  # the governor's tracks are in both recordings

    # The WAN is cut: the centre's recording has a gap for KH-17 until the node is back (it redials by itself).
    await cut_channels(centre)
    there = rooms[SESSION].participants[governor.client.participant_id]
    await until(lambda: there.reconnecting, 5, "the centre keeps the governor, reconnecting")
    await until(lambda: not there.reconnecting, 20, "the node is back")
    await asyncio.sleep(3)
    await chair.client.call("session", {"action": "close"})

    # The node seals its copy as the centre's session closes and sends it at once; it fills the gap.
    async def centre_gap() -> object:
        services = centre.services()
        try:
            async with services.db.read() as session:
                ours = await session.scalar(select(Recording).where(Recording.meeting_id == SESSION,
                                                                    Recording.started_by_id.is_not(None)))
            return ours if ours is not None and ours.gaps and ours.gaps[0].filled_by_id else None
        finally:
            await services.db.dispose()

    recording = await eventually(centre_gap, 60, "the node's copy fills the centre's gap")
    [gap] = recording.gaps
    assert gap.ended_at is not None and 0 < (gap.ended_at - gap.started_at).total_seconds() < 20
    [sealed] = await node_recordings(node)
    assert sealed.state.value == "closed"
    services = centre.services()
    try:
        async with services.db.read() as session:
            filler = await session.get(Recording, gap.filled_by_id)
    finally:
        await services.db.dispose()
    assert filler is not None and filler.key == sealed.key and filler.manifest_sha256 == sealed.manifest_sha256
    assert any(f.kind == "track" and f.person_id == there.person_id for f in filler.files), filler.files

    # The archive says so, on the page and in the API.
    async with Client(centre.url) as client:
        await client.login("secretariat")
        status, body = await client.api("GET", f"/api/recordings/{recording.id}")
        assert status == 200
        [shown] = body["recording"]["site_gaps"]
        assert shown["filled_by"] == filler.id and shown["office"]["en"] == "Siem Reap", shown
        assert 0 < shown["seconds"] < 20 and shown["end_ms"] > shown["start_ms"]
        status, page = await client.page(f"/archive/{recording.id}")
        assert status == 200 and f'data-filled-by="{filler.id}"' in page and f'href="/archive/{filler.id}"' in page


async def test_the_node_s_people_vote_in_the_centre_s_session_from_the_node(
        centre: LiveServer, node: ServerProcess, bots: dict[str, Bot], small_media: PreEncodedMedia) -> None:
    chair, governor = await chair_and_governor(centre, node, bots, small_media, governor_watches=False)
    at_node: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    governor.client.listeners.append(lambda name, data: at_node.append((name, data)) if name.startswith("vote") else None)
    await chair.client.call("session", {"action": "open"})
    joined = await chair.client.call("vote_state", {})
    assert joined["vote"] is None
    services = centre.services()
    try:
        meeting = await services.meetings.get(CLI, SESSION)
        item_id = meeting.agenda[0].id
        governor_office = (await services.people.find(CLI, "governor")).office_id
    finally:
        await services.db.dispose()

    # The chair opens a vote at the centre: the governor's page at the node has it.
    opened = await chair.client.call("vote_open", {"item_id": item_id, "question": "Adopt the flood plan?"})
    vote_id = opened["vote_id"]
    await until(lambda: any(n == "vote" and d["id"] == vote_id and d["open"] for n, d in at_node), 10,
                "the vote reaches the node's page")
    with pytest.raises(SignalingError) as refused:  # opening and closing votes are the host's
        await governor.client.call("vote_close", {"vote_id": vote_id})
    assert refused.value.code == "run_by_host"

    # The governor votes on the node's page: the ballot is cast at the centre as their office's.
    cast = await governor.client.call("vote_cast", {"vote_id": vote_id, "choice": "yes"})
    assert cast["relayed"] is True
    await until(lambda: any(n == "vote" and d["tally"]["yes"] == 1 and governor_office in d["voted_office_ids"]
                            for n, d in at_node), 10, "the tally at the node counts the governor's site")
    state = await governor.client.call("vote_state", {})
    assert state["vote"]["id"] == vote_id and state["my_site_choice"] == "yes"
    services = centre.services()
    try:
        [ballot] = (await services.votes.current(CLI, SESSION)).ballots
        assert (ballot.office_id, ballot.choice.value) == (governor_office, "yes")
    finally:
        await services.db.dispose()

    # A ballot for a vote that is not open is refused at the centre, and the page is told.
    await governor.client.call("vote_cast", {"vote_id": vote_id + 1, "choice": "no"})
    await until(lambda: any(n == "vote_refused" and d["vote_id"] == vote_id + 1 for n, d in at_node), 10,
                "the refusal reaches the node's page")
    assert [n for n, d in at_node if n == "vote_refused"] == ["vote_refused"]
    closed = await chair.client.call("vote_close", {"vote_id": vote_id})
    assert closed["vote"]["tally"] == {"yes": 1, "no": 0, "abstain": 0, "cast": 1}
