"""A briefing a regional command hosts on its own node (issue 14): the commander runs it in the command's
hall on the node, the invitees elsewhere join it at the centre. The centre's room follows the node's
session and floor: its people's voices are heard by the node's floor, its moderators cannot run the
session from the centre, and the centre's record (the archive of the meeting) follows the node's
opening, floor grants and closing, audited as the node's. Centre and node are two servers, the node a
real process, with bots on each."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot_fixtures import bots, small_media  # noqa: F401  (fixtures)
from bots.bot import Bot
from bots.errors import SignalingError
from bots.media_files import PreEncodedMedia
from harness import LiveServer
from meetings.demo import DEMO_PASSWORD
from meetings.models import AuditEvent, FloorGrant, Meeting, MeetingState
from server_process import ServerProcess
from test_node_control import register
from test_node_pipe import centre  # noqa: F401  (fixture)
from test_node_pipe import briefing_id, next_frame, person_ids, pipes, start_bot, until, voice_packets
from test_node_process import CLI, node_process, register_node, signs_in


async def add_person(centre: LiveServer, username: str, office_code: str, role: str) -> None:
    services = centre.services()
    try:
        office = next(o for o in await services.offices.list(CLI) if o.code == office_code)
        await services.people.create(CLI, username=username, full_name=f"Officer {username}", office_id=office.id,
                                     roles=[role], password=DEMO_PASSWORD)
    finally:
        await services.db.dispose()


async def start_mr4_node(tmp_path: Path, centre: LiveServer) -> ServerProcess:
    credential_file = tmp_path / "node.credential"
    await register_node(centre, "MR-4", credential_file)
    process = node_process(tmp_path, centre, credential_file, "MR-4").start()
    for _ in range(200):  # the first snapshot (the office's accounts) arrives within a second or two
        if await signs_in(process.url, "commander"):
            return process
        await asyncio.sleep(0.1)
    process.stop()
    raise AssertionError(f"the node never had the command's accounts: {process.log_tail()}")


async def centre_record(centre: LiveServer, meeting_id: int) -> tuple[Meeting, list[FloorGrant], list[AuditEvent]]:
    services = centre.services()
    try:
        async with services.db.read() as session:
            meeting = await session.get(Meeting, meeting_id)
            grants = list((await session.execute(select(FloorGrant).where(FloorGrant.meeting_id == meeting_id)
                                                 .order_by(FloorGrant.id))).scalars())
            events = list((await session.execute(select(AuditEvent).where(
                AuditEvent.target_type == "meeting", AuditEvent.target_id == str(meeting_id))
                .order_by(AuditEvent.seq))).scalars())
        assert meeting is not None
        return meeting, grants, events
    finally:
        await services.db.dispose()


async def eventually_record(centre: LiveServer, meeting_id: int, check, what: str,  # type: ignore[no-untyped-def]
                            timeout: float = 15.0) -> tuple[Meeting, list[FloorGrant], list[AuditEvent]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        record = await centre_record(centre, meeting_id)
        if check(*record):
            return record
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s ({record[0].state}, {record[1]})")
        await asyncio.sleep(0.2)


async def test_a_command_runs_its_briefing_on_its_node_and_the_centre_follows(
        tmp_path: Path, centre: LiveServer, bots: dict[str, Bot], small_media: PreEncodedMedia) -> None:
    # Military Region 4's briefing invites the High Command (RCAF-HC): its officer joins at the centre.
    await add_person(centre, "rcaf-officer", "RCAF-HC", "delegate")
    await add_person(centre, "mr4-deputy", "MR-4", "commander")  # a second commander of MR-4, at the centre
    briefing = await briefing_id(centre)
    node = await start_mr4_node(tmp_path, centre)
    try:
        commander = await start_bot(bots, small_media, node.url, "commander", "commander", publish=True,
                                    subscribe=True, meeting=briefing)
        officer = await start_bot(bots, small_media, centre.url, "rcaf-officer", "rcaf-officer", publish=True,
                                  subscribe=True, meeting=briefing)
        rooms = pipes(centre).rooms.rooms
        await until(lambda: briefing in rooms and rooms[briefing].floor.deferred, 20,
                    "the centre's room of the briefing defers to the node that runs it")
        await until(lambda: voice_packets(commander, officer) > 50, 20, "before the opening the hall hears everyone")
        await until(lambda: voice_packets(officer, commander) > 50, 20, "and the officer hears the commander")

        # A commander at the centre cannot run the node's briefing from there.
        deputy = await start_bot(bots, small_media, centre.url, "mr4-deputy", "mr4-deputy", publish=False,
                                 subscribe=True, meeting=briefing)
        with pytest.raises(SignalingError) as refused:
            await deputy.client.call("session", {"action": "open"})
        assert refused.value.code == "run_by_host"
        with pytest.raises(SignalingError) as refused:
            await deputy.client.call("floor", {"action": "grant", "participant_id": officer.client.participant_id})
        assert refused.value.code == "run_by_host"

        # The commander opens it in the hall: the centre's record and its people's pages follow.
        heard: list[tuple[str, object]] = []
        officer.client.listeners.append(lambda name, data: heard.append((name, data)))
        await commander.client.call("session", {"action": "open"})
        meeting, grants, events = await eventually_record(
            centre, briefing, lambda m, g, e: m.state is MeetingState.OPEN, "the centre's record says it is open")
        [opened] = [e for e in events if e.action == "session.open"]
        assert json.loads(opened.details)["via"] == "node" and opened.actor_id is None
        await until(lambda: any(name == "session" and data["state"] == "open"  # type: ignore[index]
                                for name, data in heard), 10, "the officer's page says the session is open")
        await asyncio.sleep(1.0)
        before = voice_packets(commander, officer)
        await asyncio.sleep(2.0)
        assert voice_packets(commander, officer) - before <= 2, "without the floor the officer is not heard"
        before = voice_packets(officer, commander)
        await until(lambda: voice_packets(officer, commander) - before > 50, 10,
                    "the commander (who runs it) is heard at the centre")

        assert [data["run_by_host"] for name, data in heard if name == "session"][-1] is True  # type: ignore[index]

        # The officer raises a hand at the centre: it is in the commander's queue in the hall, who gives them
        # the floor from there; their hand goes down in both rooms.
        queues: list[list[dict]] = []  # type: ignore[type-arg]
        commander.client.listeners.append(lambda name, data: queues.append(data["queue"]) if name == "hands" else None)  # type: ignore[index]
        await officer.client.call("raise_hand", {})
        await until(lambda: bool(queues) and [h["participant_id"] for h in queues[-1]] == [officer.client.participant_id],
                    10, "the officer's hand is in the queue at the node")
        assert queues[-1][0]["full_name"] == "Officer rcaf-officer"
        granted = await commander.client.call("floor", {"action": "grant",
                                                        "participant_id": officer.client.participant_id})
        assert granted["floor"]["holder"]["participant_id"] == officer.client.participant_id
        before = voice_packets(commander, officer)
        await until(lambda: voice_packets(commander, officer) - before > 50, 10, "with the floor the hall hears them")
        await until(lambda: any(name == "floor" and (data.get("holder") or {}).get("participant_id")  # type: ignore[union-attr]
                                == officer.client.participant_id for name, data in heard), 10,
                    "the officer's page says they hold the floor")
        await until(lambda: queues[-1] == [], 10, "their hand is down in the hall's queue once they have the floor")
        person = rooms[briefing].participants[officer.client.participant_id].person_id
        _, grants, events = await eventually_record(
            centre, briefing, lambda m, g, e: any(x.person_id == person and x.ended_at is None for x in g),
            "the centre's record has the grant")
        assert [json.loads(e.details)["via"] for e in events if e.action == "floor.grant"] == ["node"]

        # The officer yields from their page at the centre: the node's floor ends, and the record's grant.
        floors: list[dict] = []  # type: ignore[type-arg]
        commander.client.listeners.append(lambda name, data: floors.append(data) if name == "floor" else None)  # type: ignore[arg-type]
        assert (await officer.client.call("floor", {"action": "yield"}))["relayed"] is True
        await until(lambda: bool(floors) and floors[-1]["holder"] is None and floors[-1].get("ended") == "yielded",
                    10, "the hall's floor ends as the officer yields at the centre")
        _, grants, _ = await eventually_record(centre, briefing, lambda m, g, e: all(x.ended_at for x in g),
                                               "the centre's record ends the grant")

        # The commander closes it: the record closes with the node's time, the grant ends with it.
        await commander.client.call("session", {"action": "close"})
        meeting, grants, events = await eventually_record(
            centre, briefing, lambda m, g, e: m.state is MeetingState.CLOSED, "the centre's record says it closed")
        assert meeting.opened_at is not None and meeting.closed_at is not None and meeting.closed_at > meeting.opened_at
        assert [(g.person_id, g.end_reason) for g in grants] == [(person, "host")]
        assert [e.action for e in events if e.action.startswith("session.")] == ["session.open", "session.close"]
    finally:
        node.stop()

    # The node is gone (it left the meeting): the centre runs the briefing's session again.
    await until(lambda: briefing not in rooms or not rooms[briefing].floor.deferred, 10,
                "the centre takes the session back when the node leaves the meeting")


async def test_only_the_node_of_the_host_office_runs_the_session(centre: LiveServer) -> None:
    # Military Region 4's node carries its briefing (its commander is in the hall); Kampong Cham (KH-22) is
    # invited to it and its node carries its governor there. A session state in KH-22's table (forged: a
    # guest's node does not host) changes nothing at the centre; MR-4's does.
    await add_person(centre, "kh22-governor", "KH-22", "delegate")
    briefing = await briefing_id(centre)
    _, mr4 = await register(centre, "MR-4", "Military Region 4 hall")
    _, kh22 = await register(centre, "KH-22", "Kampong Cham hall")
    commander, governor = await person_ids(centre, "commander", "kh22-governor")

    def table(person: int, state: str | None) -> dict:  # type: ignore[type-arg]
        frame = {"type": "pipe_table", "meeting_id": briefing, "tracks": [],
                 "participants": [{"participant_id": f"p{person}-abc123", "person_id": person}]}
        if state is not None:
            frame["session"] = {"state": state, "opened_at": dt.datetime.now(dt.UTC).isoformat(),
                                "closed_at": None, "floor": None}
        return frame

    async def settled(ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_json({"type": "ping"})
        await next_frame(ws, "pong")

    async with aiohttp.ClientSession() as http, \
            http.ws_connect(centre.url + "/nodes/control", headers={"Authorization": f"Bearer {mr4}"}) as host, \
            http.ws_connect(centre.url + "/nodes/control", headers={"Authorization": f"Bearer {kh22}"}) as guest:
        await next_frame(host, "hello")
        await next_frame(guest, "hello")
        await host.send_json(table(commander, "scheduled"))
        await settled(host)
        room = pipes(centre).rooms.rooms[briefing]
        assert room.floor.deferred and room.floor.gates_for_host, "the host's node runs it"

        await guest.send_json(table(governor, "open"))
        answer = await next_frame(guest, "pipe_table")
        assert "session" not in answer, "the centre does not run it: its table carries no session"
        await settled(guest)
        meeting, _, events = await centre_record(centre, briefing)
        assert meeting.state is MeetingState.SCHEDULED and room.floor.state is MeetingState.SCHEDULED
        assert not [e for e in events if e.action.startswith("session.")]

        await host.send_json(table(commander, "open"))
        await settled(host)
        meeting, _, events = await centre_record(centre, briefing)
        assert meeting.state is MeetingState.OPEN and room.floor.state is MeetingState.OPEN
        assert [e.action for e in events if e.action.startswith("session.")] == ["session.open"]
        await guest.send_json({"type": "bye"})
        await host.send_json({"type": "bye"})
