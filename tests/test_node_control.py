"""A provincial node's control channel (issue 14): the node dials the centre with its credential, gets
its office's snapshot (its own people only, password hashes included) and keeps a local copy that signs
those people in while the centre is unreachable. Refused, revoked and malformed input change nothing.
The centre is the real server on loopback; the node's copy is a real database of its own."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from harness import LiveServer
from meetings import db as database
from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.demo import DEMO_PASSWORD
from meetings.errors import LoginFailed
from meetings.models import Meeting, MeetingState, Person
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.common import principal_of
from provincial_nodes import control
from provincial_nodes.control import ControlClient, backoff_seconds
from provincial_nodes.errors import SnapshotError
from provincial_nodes.replica import apply_snapshot
from provincial_nodes.replica_meetings import follow_session
from web.views import nodes as node_views

CLI = Caller.cli()
SECRET = "node-control-test-secret-0123456789abcdef"


async def register(server: LiveServer, office_code: str, name: str) -> tuple[int, str]:
    services = server.services()
    try:
        admin_person = await services.people.find(CLI, "secretariat")
        admin = Caller(principal_of(admin_person), "127.0.0.1")
        office = next(o for o in await services.offices.list(CLI) if o.code == office_code)
        node, credential = await services.nodes.add(admin, office_id=office.id, name=name)
        return node.id, credential
    finally:
        await services.db.dispose()


async def revoke(server: LiveServer, node_id: int) -> None:
    services = server.services()
    try:
        admin = Caller(principal_of(await services.people.find(CLI, "secretariat")), "127.0.0.1")
        await services.nodes.revoke(admin, node_id)
    finally:
        await services.db.dispose()


async def until(condition: Any, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def node_services(tmp_path: Path) -> AsyncIterator[Services]:
    """The node's own database (empty, migrated): what a fresh node starts from."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    database.upgrade(url)
    services = Services.build(Database(url), MeetingsConfig(), SECRET)
    yield services
    await services.db.dispose()


async def test_a_node_gets_its_own_office_and_signs_its_people_in_without_the_centre(
        live_server: LiveServer, node_services: Services) -> None:
    node_id, credential = await register(live_server, "KH-17", "Siem Reap hall")
    snapshots: list[dict[str, Any]] = []

    async def keep(snapshot: dict[str, Any]) -> None:
        await apply_snapshot(node_services.db, snapshot)
        snapshots.append(snapshot)  # applied

    client = ControlClient(live_server.url, credential, keep)
    task = asyncio.create_task(client.run())
    try:
        await until(lambda: snapshots)
        assert client.state.connected and client.state.node_id == node_id and client.state.office == "KH-17"
        assert credential not in repr(client)
    finally:
        await client.stop()
        await asyncio.wait_for(task, 10)
    snapshot = snapshots[0]
    assert snapshot["office"]["code"] == "KH-17"
    usernames = {p["username"] for p in snapshot["people"]}
    assert "governor" in usernames and not usernames & {"secretariat", "chair", "commander", "observer"}
    assert all(p["office_id"] == snapshot["office"]["id"] for p in snapshot["people"])
    kinds = {m["kind"] for m in snapshot["meetings"]}
    assert "cabinet_session" in kinds and "briefing" not in kinds, "another command's briefing never reaches it"
    assert all(i["office_id"] == snapshot["office"]["id"] or i["person_id"] in {p["id"] for p in snapshot["people"]}
               for m in snapshot["meetings"] for i in m["invitations"]), "only the office's own invitations"
    # the centre is gone (the client stopped): the office's people sign in on the node, nobody else does
    result = await node_services.auth.login("governor", DEMO_PASSWORD, Caller(None, "10.17.0.5"))
    assert result.principal.username == "governor"
    with pytest.raises(LoginFailed):
        await node_services.auth.login("commander", DEMO_PASSWORD, Caller(None, "10.17.0.5"))
    # ...and see the session they are invited to, with its agenda
    governor = Caller(result.principal, "10.17.0.5")
    visible = await node_services.meetings.list_visible(governor)
    assert visible and {m.kind.value for m in visible} == {"cabinet_session"} and any(m.agenda for m in visible)
    async with node_services.db.read() as session:
        others = (await session.execute(select(Person).where(Person.office_id != snapshot["office"]["id"]))).scalars()
        assert all(not p.active and p.username.startswith("centre-") and p.password_hash == "!" for p in others)


async def test_a_command_node_gets_its_briefing_and_a_province_node_does_not(live_server: LiveServer) -> None:
    got: dict[str, dict[str, Any]] = {}
    for office in ("MR-4", "KH-22"):
        _, credential = await register(live_server, office, f"{office} briefing room")
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(live_server.url + "/nodes/control",
                                       headers={"Authorization": f"Bearer {credential}"})
            await ws.receive_json(timeout=5)
            got[office] = (await ws.receive_json(timeout=5))["snapshot"]
            await ws.close()
    assert {m["kind"] for m in got["MR-4"]["meetings"]} == {"briefing"}
    assert "briefing" in [m["kind"] for m in got["KH-22"]["meetings"]], "KH-22 is invited to it"
    # the briefing's host is named (code and names), its people are not
    mr4 = got["MR-4"]["office"]["id"]
    assert [o["code"] for o in got["KH-22"]["offices"] if o["id"] == mr4] == ["MR-4"]
    assert not any(p["office_id"] == mr4 for p in got["KH-22"]["people"])


async def test_missing_malformed_unknown_and_revoked_credentials_are_refused(
        live_server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    node_id, credential = await register(live_server, "KH-10", "Kratie hall")
    url = live_server.url + "/nodes/control"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer not-a-credential"},
                        {"Authorization": "Bearer cabn_" + "A" * 43}, {"Authorization": f"Basic {credential}"}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url, headers=headers)
            assert refused.value.status == 401
    await revoke(live_server, node_id)
    snapshots: list[dict[str, Any]] = []

    async def keep(snapshot: dict[str, Any]) -> None:
        snapshots.append(snapshot)

    client = ControlClient(live_server.url, credential, keep)
    task = asyncio.create_task(client.run())
    try:
        await until(lambda: client.state.refusals >= 1)
        assert not snapshots and not client.state.connected and "refused" in client.state.last_error
    finally:
        await client.stop()
        await asyncio.wait_for(task, 10)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    assert "node credential refused" in logged and credential not in logged and credential[13:] not in logged


async def test_a_node_revoked_while_connected_is_cut_off(live_server: LiveServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_views, "REVALIDATE_SECONDS", 0.2)
    node_id, credential = await register(live_server, "KH-2", "Battambang hall")

    async def keep(snapshot: dict[str, Any]) -> None:
        return None

    client = ControlClient(live_server.url, credential, keep)
    task = asyncio.create_task(client.run())
    try:
        await until(lambda: client.state.connected)
        await revoke(live_server, node_id)
        await until(lambda: client.state.refusals >= 1)
        assert not client.state.connected and client.state.last_lost_at is not None
    finally:
        await client.stop()
        await asyncio.wait_for(task, 10)


async def test_bad_frames_get_an_error_and_change_nothing(live_server: LiveServer) -> None:
    _, credential = await register(live_server, "KH-3", "Kampong Cham hall")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(live_server.url + "/nodes/control",
                                   headers={"Authorization": f"Bearer {credential}"})
        hello, snapshot = await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)
        assert hello["type"] == "hello" and hello["node"]["office"] == "KH-3" and snapshot["type"] == "snapshot"
        for bad in ("not json", "[]", '{"type": "drop_tables"}', '{"kind": "ping"}', '{"type": 5}'):
            await ws.send_str(bad)
            reply = await ws.receive_json(timeout=5)
            assert reply["type"] == "error" and reply["code"] == "bad_frame", (bad, reply)
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive_json(timeout=5))["type"] == "error"
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=5)) == {"type": "pong"}
        await ws.send_json({"type": "resync"})
        again = await ws.receive_json(timeout=5)
        assert again["type"] == "snapshot" and again["snapshot"]["people"] == snapshot["snapshot"]["people"]
        await ws.close()


async def test_a_second_connection_of_the_node_replaces_the_first(live_server: LiveServer) -> None:
    _, credential = await register(live_server, "KH-4", "Kampong Chhnang hall")
    headers = {"Authorization": f"Bearer {credential}"}
    async with aiohttp.ClientSession() as http:
        first = await http.ws_connect(live_server.url + "/nodes/control", headers=headers)
        await first.receive_json(timeout=5)
        second = await http.ws_connect(live_server.url + "/nodes/control", headers=headers)
        assert (await second.receive_json(timeout=5))["type"] == "hello"
        closing = await first.receive(timeout=5)
        while closing.type == aiohttp.WSMsgType.TEXT:  # the snapshot sent before the replacement
            closing = await first.receive(timeout=5)
        # The code as sent: the server may drop the socket before this client, not reading, replies.
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == node_views.CLOSE_REPLACED
        await second.close()


def test_reconnect_backoff_is_jittered_between_one_and_thirty_seconds() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        delays = [backoff_seconds(attempt, rng) for _ in range(200)]
        ceiling = min(control.MAX_BACKOFF_SECONDS, 2 ** attempt)
        assert all(control.MIN_BACKOFF_SECONDS <= d <= ceiling for d in delays)
        if attempt >= 3:
            assert max(delays) - min(delays) > ceiling / 3, "jittered, not one value for every node"
        # Just after an established link was lost: redialled often, still jittered, for five minutes.
        soon = [backoff_seconds(attempt, rng, since_loss=60) for _ in range(200)]
        assert all(control.MIN_BACKOFF_SECONDS <= d <= min(ceiling, control.FAST_CEILING_SECONDS) for d in soon)
        later = [backoff_seconds(attempt, rng, since_loss=control.FAST_WINDOW_SECONDS + 1) for _ in range(200)]
        assert max(later) > control.FAST_CEILING_SECONDS or ceiling <= control.FAST_CEILING_SECONDS


def snapshot_of(office_id: int = 40, people: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    changed = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).isoformat()
    return {"version": 1, "generated_at": changed,
            "office": {"id": office_id, "code": "KH-40", "kind": "province", "name_en": "Test", "name_km": "តេស្ត",
                       "active": True},
            "people": people if people is not None else [
                {"id": 900, "username": "gov40", "full_name": "Governor 40", "office_id": office_id,
                 "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "active": True,
                 "password_changed_at": changed, "roles": ["delegate"]},
                {"id": 901, "username": "dep40", "full_name": "Deputy 40", "office_id": office_id,
                 "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "active": True,
                 "password_changed_at": changed, "roles": ["delegate", "observer"]}],
            "offices": [], "meetings": []}


async def people_of(services: Services) -> dict[str, tuple[bool, frozenset[str]]]:
    async with services.db.read() as session:
        rows = (await session.execute(select(Person).where(Person.office_id == 40))).scalars().all()
        return {p.username: (p.active, frozenset(r.value for r in p.roles)) for p in rows}


async def test_each_snapshot_replaces_the_copy_and_a_malformed_one_changes_nothing(node_services: Services) -> None:
    first = await apply_snapshot(node_services.db, snapshot_of())
    assert (first.created, first.updated, first.deactivated) == (2, 0, 0)
    second = snapshot_of()
    second["people"] = [dict(second["people"][0], roles=["chair"], full_name="Governor Forty")]
    result = await apply_snapshot(node_services.db, second)
    assert (result.created, result.updated, result.deactivated) == (0, 1, 1)
    assert await people_of(node_services) == {"gov40": (True, frozenset({"chair"})),
                                              "dep40": (False, frozenset({"delegate", "observer"}))}
    before = await people_of(node_services)
    someone_else = dict(second["people"][0], id=902, username="spy", office_id=41)
    for bad in (None, [], {"version": 2}, dict(second, version=2), dict(second, office="KH-40"),
                dict(second, people=[someone_else]), dict(second, people=[dict(second["people"][0], roles=["root"])]),
                dict(second, people=[dict(second["people"][0], password_changed_at="yesterday")]),
                dict(second, people=[second["people"][0], dict(second["people"][0], id=903)]),
                dict(second, people=[dict(second["people"][0], id=True)])):
        with pytest.raises(SnapshotError):
            await apply_snapshot(node_services.db, bad)
    assert await people_of(node_services) == before


async def test_the_secretariat_registers_sees_the_link_of_and_revokes_a_node_on_its_page(
        live_server: LiveServer) -> None:
    from harness import Client

    async with Client(live_server.url) as browser:
        await browser.login("secretariat")
        status, page = await browser.page("/nodes")
        assert status == 200 and "Register a node" in page
        kh5 = next(o.id for o in await _offices(live_server) if o.code == "KH-5")
        response = await browser.form("/nodes", {"office_id": str(kh5), "name": "Kampong Speu hall"})
        body = await response.text()
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
        credential = re.search(r'<code id="credential">(cabn_[A-Za-z0-9_-]{43})</code>', body)
        assert credential is not None
        refused = await browser.form("/nodes", {"office_id": str(kh5), "name": "Kampong Speu hall"})
        assert refused.status == 400 and "active node named" in await refused.text()

        async def keep(snapshot: dict[str, Any]) -> None:
            return None

        client = ControlClient(live_server.url, credential.group(1), keep)
        task = asyncio.create_task(client.run())
        try:
            await until(lambda: client.state.connected)
            _, page = await browser.page("/nodes")
            row = re.search(r'<tr data-node="(\d+)"><td>KH-5</td>.*?</tr>', page, re.S)
            assert row is not None and "connected since" in row.group(0) and credential.group(1) not in page
            revoked = await browser.form(f"/nodes/{row.group(1)}/revoke", {})
            assert revoked.status == 303
            await until(lambda: client.state.refusals >= 1, 5)  # cut off at once, not at the next check
        finally:
            await client.stop()
            await asyncio.wait_for(task, 10)
        _, page = await browser.page("/nodes")
        assert re.search(r'<tr data-node="\d+"><td>KH-5</td>.*?revoked', page, re.S)
    async with Client(live_server.url) as governor:
        await governor.login("governor")
        assert (await governor.page("/nodes"))[0] == 403
        refused = await governor.form("/nodes", {"office_id": str(kh5), "name": "Rogue hall"})
        assert refused.status == 403


async def _offices(server: LiveServer) -> list[Any]:
    services = server.services()
    try:
        return list(await services.offices.list(CLI))
    finally:
        await services.db.dispose()


def meeting_of(office_id: int = 40, meeting_id: int = 500, invitations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    at = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.UTC)
    return {"id": meeting_id, "title": "Weekly session", "kind": "cabinet_session", "state": "scheduled",
            "host_office_id": 1, "created_by_id": 7, "starts_at": at.isoformat(),
            "ends_at": (at + dt.timedelta(hours=2)).isoformat(), "opened_at": None, "closed_at": None,
            "description": "", "locked": False, "lobby_enabled": False, "record_sessions": True,
            "quorum_percent": 50, "grace_seconds": 60, "sequence": 0,
            "agenda": [{"id": 800, "position": 1, "title": "Flood preparedness", "presenter_office_id": office_id,
                        "planned_minutes": 30}],
            "invitations": invitations if invitations is not None else [{"id": 700, "office_id": office_id,
                                                                         "person_id": None}]}


async def test_meetings_come_with_their_agenda_and_leave_with_the_office_s_invitation(node_services: Services) -> None:
    snapshot = snapshot_of()
    snapshot["offices"] = [{"id": 1, "code": "OCM", "kind": "secretariat", "name_en": "Office of the Council",
                            "name_km": "ទីស្ដីការ", "active": True}]
    snapshot["meetings"] = [meeting_of()]
    result = await apply_snapshot(node_services.db, snapshot)
    assert result.meetings == 1
    async with node_services.db.read() as session:
        meeting = await session.get(Meeting, 500)
        assert meeting is not None and [i.title for i in meeting.agenda] == ["Flood preparedness"]
        assert [i.office_id for i in meeting.invitations] == [40]
        creator = await session.get(Person, 7)
        assert creator is not None and not creator.active and creator.password_hash == "!"
    for bad in (dict(snapshot, meetings=[meeting_of(invitations=[{"id": 701, "office_id": 41, "person_id": None}])]),
                dict(snapshot, meetings=[meeting_of(invitations=[{"id": 701, "office_id": None, "person_id": 5}])]),
                dict(snapshot, meetings=[dict(meeting_of(), host_office_id=99)]),
                dict(snapshot, meetings=[dict(meeting_of(), kind="party")]),
                dict(snapshot, offices=[{"id": 2, "code": "KH-40", "kind": "province", "name_en": "x", "name_km": "x",
                                         "active": True}])):
        with pytest.raises(SnapshotError):
            await apply_snapshot(node_services.db, bad)
    async with node_services.db.read() as session:
        assert [i.office_id for i in (await session.get(Meeting, 500)).invitations] == [40], "nothing changed"
    await apply_snapshot(node_services.db, dict(snapshot, meetings=[]))  # the office was uninvited
    async with node_services.db.read() as session:
        assert (await session.get(Meeting, 500)).invitations == []


async def test_a_snapshot_never_takes_a_session_back_that_the_node_ran_further(node_services: Services) -> None:
    # The node opened (then closed) its own briefing during a cut; the centre's snapshot at the reconnection
    # still says scheduled (its record follows the node's tables a moment later): the copy keeps its state.
    snapshot = snapshot_of()
    snapshot["offices"] = [{"id": 1, "code": "OCM", "kind": "secretariat", "name_en": "Office of the Council",
                            "name_km": "ទីស្ដីការ", "active": True}]
    snapshot["meetings"] = [meeting_of()]
    await apply_snapshot(node_services.db, snapshot)
    opened = dt.datetime(2026, 12, 4, 1, 5, tzinfo=dt.UTC)
    assert await follow_session(node_services.db, 500, MeetingState.OPEN, opened, None)
    assert not await follow_session(node_services.db, 500, MeetingState.SCHEDULED, None, None), "never back"

    async def state() -> tuple[MeetingState, dt.datetime | None, str]:
        async with node_services.db.read() as session:
            meeting = await session.get(Meeting, 500)
            assert meeting is not None
            return meeting.state, meeting.opened_at, meeting.title

    await apply_snapshot(node_services.db, dict(snapshot, meetings=[dict(meeting_of(), title="Renamed")]))
    assert await state() == (MeetingState.OPEN, opened, "Renamed"), "the rest of the meeting is the centre's"
    closed = dict(meeting_of(), state="closed", opened_at=opened.isoformat(),
                  closed_at=(opened + dt.timedelta(hours=1)).isoformat())
    await apply_snapshot(node_services.db, dict(snapshot, meetings=[closed]))
    assert (await state())[0] is MeetingState.CLOSED, "forward: the centre's record goes on"
    await apply_snapshot(node_services.db, dict(snapshot, meetings=[dict(meeting_of(), state="cancelled")]))
    assert (await state())[0] is MeetingState.CANCELLED, "a cancellation always applies"


async def test_a_change_at_the_centre_reaches_the_connected_node(live_server: LiveServer, node_services: Services,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An account created and then disabled at the centre is on the node, then disabled there, within
    the revalidation period (0.2 s here), with no reconnect."""
    monkeypatch.setattr(node_views, "REVALIDATE_SECONDS", 0.2)
    _, credential = await register(live_server, "KH-9", "Koh Kong hall")
    snapshots: list[dict[str, Any]] = []

    async def keep(snapshot: dict[str, Any]) -> None:
        await apply_snapshot(node_services.db, snapshot)
        snapshots.append(snapshot)  # applied: the node signs in from it

    client = ControlClient(live_server.url, credential, keep)
    task = asyncio.create_task(client.run())
    services = live_server.services()
    try:
        await until(lambda: snapshots)
        await asyncio.sleep(0.6)
        assert len(snapshots) == 1, "an unchanged office is not sent again"
        admin = Caller(principal_of(await services.people.find(CLI, "secretariat")), "127.0.0.1")
        kh9 = snapshots[0]["office"]["id"]
        person = await services.people.create(admin, username="kohkong.deputy", full_name="Deputy of Koh Kong",
                                              office_id=kh9, roles=["delegate"], password="a long enough pass 2026")
        await until(lambda: any(p["username"] == "kohkong.deputy" for p in snapshots[-1]["people"]), 5)
        assert (await node_services.auth.login("kohkong.deputy", "a long enough pass 2026", Caller(None, "10.9.0.2")))
        await services.people.update(admin, person.id, active=False)
        await until(lambda: not next(p for p in snapshots[-1]["people"] if p["username"] == "kohkong.deputy")["active"], 5)
        with pytest.raises(LoginFailed):
            await node_services.auth.login("kohkong.deputy", "a long enough pass 2026", Caller(None, "10.9.0.2"))
        assert client.state.connects == 1
    finally:
        await services.db.dispose()
        await client.stop()
        await asyncio.wait_for(task, 10)
