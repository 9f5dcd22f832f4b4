"""Running a live session over signaling: enforced mute, removal, lock, lobby, hands, agenda, audit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiortc.mediastreams import AudioStreamTrack

from harness import LiveServer, make_config
from meetings.policy import Caller
from sigclient import SigClient

CLI = Caller.cli()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(make_config(tmp_path_factory.mktemp("mod"), **{"media.ice_bind_addresses": ["127.0.0.1"]}))
    yield live.start()
    live.stop()


async def token(server: LiveServer, username: str) -> str:
    return await server.join_token(username)


async def audit_actions(server: LiveServer) -> list[str]:
    services = server.services()
    try:
        return [e.action for e in await services.audit.recent(CLI, limit=200)]
    finally:
        await services.db.dispose()


@pytest.fixture
async def people(server: LiveServer) -> AsyncIterator[dict[str, SigClient]]:
    made: dict[str, SigClient] = {}

    async def _cleanup() -> None:
        for c in made.values():
            await c.close()

    yield made
    await _cleanup()


async def connect(server: LiveServer, made: dict[str, SigClient], username: str) -> tuple[SigClient, dict]:
    client = SigClient(server.url)
    made[username] = client
    await client.connect(await token(server, username))
    joined = await client.call("join")
    return client, joined


async def packets_received(client: SigClient, kind: str) -> int:
    assert client.recv_pc is not None
    report = await client.recv_pc.getStats()
    return sum(s.packetsReceived for s in report.values() if s.type == "inbound-rtp" and s.kind == kind)


async def test_enforced_mute_stops_audio_at_the_server(server: LiveServer, people: dict[str, SigClient]) -> None:
    secretariat, s = await connect(server, people, "secretariat")
    governor, g = await connect(server, people, "governor")
    assert s["permissions"]["moderate"] and not g["permissions"]["moderate"]
    assert (await governor.publish(AudioStreamTrack()))["ok"]
    await secretariat.subscribe()
    deadline = time.monotonic() + 20
    while await packets_received(secretariat, "audio") < 25 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await packets_received(secretariat, "audio") >= 25
    # A delegate cannot moderate.
    refused = await governor.call("moderate", {"action": "mute", "participant_id": s["participant_id"]})
    assert refused["error"]["code"] == "forbidden"
    reply = await secretariat.call("moderate", {"action": "mute", "participant_id": g["participant_id"]})
    assert reply["ok"], reply
    note = await governor.wait_for("mute_changed", lambda m: m["by"] == "server")
    assert note["muted"] and note["participant_id"] == g["participant_id"]
    await asyncio.sleep(1.0)
    before = await packets_received(secretariat, "audio")
    await asyncio.sleep(1.5)
    assert await packets_received(secretariat, "audio") - before <= 2  # the governor's page still sends; the SFU drops
    assert (await governor.call("mute", {"kind": "audio", "muted": False}))["error"]["code"] == "force_muted"
    assert (await secretariat.call("moderate", {"action": "unmute", "participant_id": g["participant_id"]}))["ok"]
    before = await packets_received(secretariat, "audio")
    deadline = time.monotonic() + 15
    while await packets_received(secretariat, "audio") - before < 25 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await packets_received(secretariat, "audio") - before >= 25
    actions = await audit_actions(server)
    assert "participant.mute" in actions and "participant.unmute" in actions


async def test_hands_are_queued_in_order(server: LiveServer, people: dict[str, SigClient]) -> None:
    chair, _ = await connect(server, people, "chair")
    governor, g = await connect(server, people, "governor")
    secretariat, s = await connect(server, people, "secretariat")
    assert (await governor.call("raise_hand"))["ok"]
    await asyncio.sleep(0.05)
    assert (await secretariat.call("raise_hand"))["ok"]
    hands = await chair.wait_for("hands", lambda h: len(h["queue"]) == 2)
    assert [h["participant_id"] for h in hands["queue"]] == [g["participant_id"], s["participant_id"]]
    chair.events["hands"].clear()
    assert (await chair.call("moderate", {"action": "lower_hand", "participant_id": g["participant_id"]}))["ok"]
    hands = await chair.wait_for("hands", lambda h: len(h["queue"]) == 1)
    assert hands["queue"][0]["participant_id"] == s["participant_id"]


async def test_lock_lobby_admit_and_remove(server: LiveServer, people: dict[str, SigClient]) -> None:
    secretariat, _ = await connect(server, people, "secretariat")
    assert (await secretariat.call("moderate", {"action": "lock"}))["ok"]
    locked = SigClient(server.url)
    people["locked-governor"] = locked
    await locked.connect(await token(server, "governor"))
    assert (await locked.call("join"))["error"]["code"] == "locked"
    assert (await secretariat.call("moderate", {"action": "unlock"}))["ok"]
    assert (await secretariat.call("moderate", {"action": "lobby_on"}))["ok"]
    governor, g = await connect(server, people, "governor")
    assert g["lobby"] is True
    assert (await governor.call("raise_hand"))["error"]["code"] == "in_lobby"
    waiting = await secretariat.wait_for("lobby", lambda x: len(x["waiting"]) == 1)
    assert waiting["waiting"][0]["participant_id"] == g["participant_id"]
    assert (await secretariat.call("moderate", {"action": "admit", "participant_id": g["participant_id"]}))["ok"]
    admitted = await governor.wait_for("admitted")
    assert admitted["lobby"] is False and g["participant_id"] in {p["participant_id"] for p in admitted["roster"]}
    assert (await secretariat.call("moderate", {"action": "lobby_off"}))["ok"]
    assert (await secretariat.call("moderate", {"action": "remove", "participant_id": g["participant_id"]}))["ok"]
    await governor.wait_for("removed")
    await secretariat.wait_for("participant_left", lambda p: p["participant_id"] == g["participant_id"])
    # A removed person cannot come back into this session with a fresh token.
    again = SigClient(server.url)
    people["again"] = again
    await again.connect(await token(server, "governor"))
    assert (await again.call("join"))["error"]["code"] == "removed"
    # Until a moderator lets the person back in (the removal binds the person, restarts included).
    person_id = admitted["me"]["person_id"]
    assert (await secretariat.call("moderate", {"action": "readmit", "person_id": person_id}))["ok"]
    assert (await secretariat.call("moderate", {"action": "readmit", "person_id": person_id}))["error"]["code"] \
        == "wrong_state"
    back = SigClient(server.url)
    people["back"] = back
    await back.connect(await token(server, "governor"))
    assert "participant_id" in await back.call("join")
    presence = (await secretariat.wait_for("presence"))
    assert presence["people"]
    actions = await audit_actions(server)
    for action in ("meeting.lock", "meeting.unlock", "meeting.lobby", "lobby.admit", "participant.remove"):
        assert action in actions


async def test_current_agenda_item(server: LiveServer, people: dict[str, SigClient]) -> None:
    chair, c = await connect(server, people, "chair")
    observer, o = await connect(server, people, "observer")
    items = c["agenda"]["items"]
    assert len(items) == 4 and items[1]["presenter"] == "Ministry of Water Resources and Meteorology"
    assert (await observer.call("set_agenda_item", {"item_id": items[1]["id"]}))["error"]["code"] == "forbidden"
    assert (await chair.call("set_agenda_item", {"item_id": 999999}))["error"]["code"] == "invalid"
    assert (await chair.call("set_agenda_item", {"item_id": items[1]["id"]}))["ok"]
    agenda = await observer.wait_for("agenda")
    assert agenda["current_item_id"] == items[1]["id"]
    assert "agenda.current" in await audit_actions(server)


async def test_quality_reports_are_shared(server: LiveServer, people: dict[str, SigClient]) -> None:
    chair, _ = await connect(server, people, "chair")
    governor, g = await connect(server, people, "governor")
    assert (await governor.call("stats", {"rtt_ms": 312.4, "loss_percent": 2.5, "bitrate_kbps": 640}))["ok"]
    quality = await chair.wait_for("quality", lambda q: q["participant_id"] == g["participant_id"])
    assert quality["rtt_ms"] == 312.4 and quality["loss_percent"] == 2.5
    assert (await governor.call("stats", {"rtt_ms": -1}))["error"]["code"] == "invalid"


async def test_a_mute_outlives_a_reconnect_and_a_rejoin_replaces_the_old_connection(
        server: LiveServer, people: dict[str, SigClient]) -> None:
    secretariat, _ = await connect(server, people, "secretariat")
    governor, g = await connect(server, people, "governor")
    assert (await governor.call("ping"))["ok"]
    assert (await secretariat.call("moderate", {"action": "mute", "participant_id": g["participant_id"]}))["ok"]
    again = SigClient(server.url)
    people["governor-again"] = again
    await again.connect(await token(server, "governor"))
    rejoined = await again.call("join")
    assert rejoined["me"]["force_muted"] is True
    assert [p["person_id"] for p in rejoined["roster"]].count(rejoined["me"]["person_id"]) == 1
    await secretariat.wait_for("participant_left", lambda p: p["participant_id"] == g["participant_id"]
                               and p["status"] == "replaced")
    assert (await again.call("mute", {"kind": "audio", "muted": False}))["error"]["code"] == "force_muted"
    assert (await secretariat.call("moderate", {"action": "unmute",
                                                "participant_id": rejoined["participant_id"]}))["ok"]
    assert (await again.call("mute", {"kind": "audio", "muted": False}))["ok"]


async def test_the_console_and_the_meeting_page_of_one_person_coexist(server: LiveServer,
                                                                      people: dict[str, SigClient]) -> None:
    room, r = await connect(server, people, "secretariat")
    console = SigClient(server.url)
    people["secretariat-console"] = console
    await console.connect(await token(server, "secretariat"))
    c = await console.call("join", {"client": "console", "last_n": 0})
    assert c["ok"] and c["me"]["client"] == "console"
    assert {p["participant_id"] for p in c["roster"]} >= {r["participant_id"], c["participant_id"]}
    assert (await room.call("ping"))["ok"]  # not replaced
    assert (await console.call("join", {"client": "kiosk"}))["error"]["code"] == "invalid"


async def test_mute_and_removal_bind_the_person_on_every_connection(server: LiveServer,
                                                                    people: dict[str, SigClient]) -> None:
    """A delegate with two connections (the meeting page and a console) is muted and removed as a person."""
    chair, _ = await connect(server, people, "chair")
    page, g = await connect(server, people, "governor")
    second = SigClient(server.url)
    people["governor-console"] = second
    await second.connect(await token(server, "governor"))
    s = await second.call("join", {"client": "console"})
    assert s["ok"] and s["participant_id"] != g["participant_id"]
    # A force-mute of one connection mutes the person: the other connection may not unmute itself.
    assert (await chair.call("moderate", {"action": "mute", "participant_id": g["participant_id"]}))["ok"]
    for client in (page, second):
        reply = await client.call("mute", {"kind": "audio", "muted": False})
        assert reply["error"]["code"] == "force_muted", reply
    await chair.wait_for("mute_changed", lambda m: m["participant_id"] == s["participant_id"] and m["force_muted"])
    assert (await chair.call("moderate", {"action": "unmute", "participant_id": s["participant_id"]}))["ok"]
    for client in (page, second):
        assert (await client.call("mute", {"kind": "audio", "muted": False}))["ok"]
    # Removal: both connections are told and closed; a new connection of that person is refused.
    assert (await chair.call("moderate", {"action": "remove", "participant_id": g["participant_id"]}))["ok"]
    for client in (page, second):
        await client.wait_for("removed")
    deadline = time.monotonic() + 15
    while (page.sio.connected or second.sio.connected) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not page.sio.connected and not second.sio.connected
    left = {e["participant_id"] for e in chair.events["participant_left"]}
    assert {g["participant_id"], s["participant_id"]} <= left
    again = SigClient(server.url)
    people["governor-again"] = again
    await again.connect(await token(server, "governor"))
    assert (await again.call("join", {"client": "console"}))["error"]["code"] == "removed"
    assert (await chair.call("moderate", {"action": "readmit", "person_id": g["me"]["person_id"]}))["ok"]
