"""Refusals on protected objects reach the audit trail: counted, one row per key and period, bounded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
from sqlalchemy import select

from harness import Client, LiveServer, make_config
from meetings.models import AuditEvent
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.common import principal_of
from meetings.services.refusals import ACTION, RefusalLog
from sigclient import SigClient

CLI = Caller.cli()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PROBES = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    config = make_config(tmp_path_factory.mktemp("refusals"), **{"media.ice_bind_addresses": ["127.0.0.1"]})
    live = LiveServer(config).start()
    yield live
    live.stop()


async def with_services(server: LiveServer, work: Any) -> Any:
    services = server.services()
    try:
        return await work(services)
    finally:
        await services.db.dispose()


async def flush(server: LiveServer) -> int:
    return await server.in_server(lambda s: s.refusals.flush())


async def refusal_rows(server: LiveServer, after_seq: int = 0) -> list[AuditEvent]:
    async def read(s: Services) -> list[AuditEvent]:
        async with s.db.read() as session:
            query = select(AuditEvent).where(AuditEvent.action == ACTION, AuditEvent.seq > after_seq)
            return list((await session.execute(query.order_by(AuditEvent.seq))).scalars())
    return await with_services(server, read)  # type: ignore[no-any-return]


async def head_seq(server: LiveServer) -> int:
    events = await with_services(server, lambda s: s.audit.recent(CLI, limit=1))
    return events[0].seq if events else 0


async def assert_chain_intact(server: LiveServer) -> None:
    result = await with_services(server, lambda s: s.audit.verify(CLI))
    assert result.ok, result


def details(event: AuditEvent) -> dict[str, Any]:
    return json.loads(event.details)  # type: ignore[no-any-return]


async def ids(server: LiveServer) -> dict[str, int]:
    async def read(s: Services) -> dict[str, int]:
        meetings: dict[str, int] = {}
        for m in await s.meetings.list_visible(CLI):
            meetings.setdefault(m.kind.value, m.id)  # the first of each kind, as LiveServer.join_token picks
        return {"governor": (await s.people.find(CLI, "governor")).id,
                "commander": (await s.people.find(CLI, "commander")).id,
                "session": meetings["cabinet_session"], "briefing": meetings["briefing"]}
    return await with_services(server, read)


async def briefing_document(server: LiveServer, briefing_id: int) -> int:
    """A document on an agenda item of the briefing, uploaded by its host (the commander)."""
    async def upload(s: Services) -> int:
        commander = Caller(principal_of(await s.people.find(CLI, "commander")), "127.0.0.1")
        item = await s.agenda.add(commander, briefing_id, title="Border posts")
        document = await s.documents.upload(commander, item.id, filename="posts.pdf",
                                            content_type="application/pdf", body=PDF)
        return document.id
    return await with_services(server, upload)


async def test_probing_a_briefing_is_audited_once_per_target_answered_like_a_missing_id(server: LiveServer) -> None:
    i = await ids(server)
    document_id = await briefing_document(server, i["briefing"])
    await flush(server)
    start = await head_seq(server)
    missing = 999_999
    async with Client(server.url) as governor:
        assert (await governor.login("governor")).status == 303
        for _ in range(PROBES):
            hidden_page = await governor.page(f"/meetings/{i['briefing']}")
            missing_page = await governor.page(f"/meetings/{missing}")
            # The page links to itself in the other language: the id asked for is the only difference.
            hidden_page = (hidden_page[0], hidden_page[1].replace(f"/meetings/{i['briefing']}?", "/meetings/ID?"))
            missing_page = (missing_page[0], missing_page[1].replace(f"/meetings/{missing}?", "/meetings/ID?"))
            hidden_api = await governor.api("GET", f"/api/meetings/{i['briefing']}")
            missing_api = await governor.api("GET", f"/api/meetings/{missing}")
            hidden_doc = await governor.api("GET", f"/api/documents/{document_id}")
            missing_doc = await governor.api("GET", f"/api/documents/{missing}")
            assert hidden_page == missing_page and hidden_page[0] == 404
            assert hidden_api == missing_api and hidden_api[0] == 404
            assert hidden_doc == missing_doc and hidden_doc[0] == 404
    assert await refusal_rows(server, start) == [], "nothing is written before the flush"
    assert await flush(server) == 4
    rows = await refusal_rows(server, start)
    by_target = {(e.target_type, e.target_id): e for e in rows}
    assert len(rows) == len(by_target) == 4
    briefing = by_target[("meeting", str(i["briefing"]))]
    assert briefing.actor_id == i["governor"] and briefing.address == "127.0.0.1"
    assert details(briefing)["kind"] == "not_found"
    assert details(briefing)["count"] == 2 * PROBES  # the page and the API on the same meeting
    assert set(details(briefing)["routes"]) == {"GET /meetings/{id}", "GET /api/meetings/{id}"}
    document = by_target[("document", str(document_id))]
    assert details(document)["count"] == PROBES and details(document)["routes"] == ["GET /api/documents/{id}"]
    assert details(document)["first_at"] <= details(document)["last_at"]
    # The missing ids are recorded the same way: the trail holds what the caller was answered.
    assert details(by_target[("meeting", str(missing))])["count"] == 2 * PROBES
    assert details(by_target[("document", str(missing))])["count"] == PROBES
    # A period with no refusals writes nothing; the next probe starts a new row.
    assert await flush(server) == 0
    async with Client(server.url) as governor:
        await governor.login("governor")
        await governor.api("GET", f"/api/meetings/{i['briefing']}")
    assert await flush(server) == 1
    assert details((await refusal_rows(server, briefing.seq))[-1])["count"] == 1
    await assert_chain_intact(server)


async def test_forbidden_pages_and_admin_are_audited(server: LiveServer) -> None:
    i = await ids(server)
    await flush(server)
    start = await head_seq(server)
    async with Client(server.url) as governor:
        await governor.login("governor")
        assert (await governor.page("/audit"))[0] == 403
        assert (await governor.api("GET", "/api/people"))[0] == 403
        assert (await governor.page(f"/meetings/{i['session']}/console"))[0] == 403
    await flush(server)
    got = {(e.target_type, e.target_id, details(e)["kind"]) for e in await refusal_rows(server, start)}
    assert got == {("audit", "", "forbidden"), ("person", "", "forbidden"),
                   ("meeting", str(i["session"]), "forbidden")}


async def test_a_csrf_refusal_of_a_logged_in_user_is_audited(server: LiveServer) -> None:
    i = await ids(server)
    await flush(server)
    start = await head_seq(server)
    async with Client(server.url) as anonymous:
        await anonymous.page("/login")
        response = await anonymous.form("/login", {"username": "governor", "password": "x"}, csrf="0" * 64)
        assert response.status == 403  # not audited: nobody is logged in
    async with Client(server.url) as governor:
        await governor.login("governor")
        status, reply = await governor.api("POST", "/api/notices/read-all", {}, csrf="0" * 64)
        assert status == 403 and reply["error"]["code"] == "csrf"
        status, reply = await governor.api("POST", "/api/notices/read-all", {},
                                           headers={"Origin": "https://evil.example"})
        assert status == 403 and reply["error"]["code"] == "csrf"
    assert await flush(server) == 1
    (row,) = await refusal_rows(server, start)
    assert row.actor_id == i["governor"] and (row.target_type, row.target_id) == ("notice", "")
    assert details(row)["kind"] == "csrf" and details(row)["count"] == 2
    assert details(row)["routes"] == ["POST /api/notices/read-all"]
    await assert_chain_intact(server)


async def test_signaling_refusals_are_audited(server: LiveServer) -> None:
    i = await ids(server)

    async def forged(s: Services) -> str:
        commander = await s.people.find(CLI, "commander")
        token, _ = s.meetings.signer.mint(meeting_id=i["session"], person_id=commander.id,
                                          office_id=commander.office_id, roles=("commander",))
        return token

    token = await with_services(server, forged)
    await flush(server)
    start = await head_seq(server)
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(server.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    await sio.disconnect()
    governor = SigClient(server.url)
    try:
        await governor.connect(await server.join_token("governor"))
        assert (await governor.call("join"))["ok"]
        for _ in range(2):
            reply = await governor.call("set_agenda_item", {"item_id": None})
            assert reply["error"]["code"] == "forbidden"
    finally:
        await governor.close()
    await flush(server)
    rows = {e.actor_id: e for e in await refusal_rows(server, start)}
    assert set(rows) == {i["commander"], i["governor"]}
    refused_connect, refused_event = rows[i["commander"]], rows[i["governor"]]
    assert (refused_connect.target_type, refused_connect.target_id) == ("meeting", str(i["session"]))
    assert details(refused_connect) | {"first_at": "", "last_at": ""} == {
        "kind": "signaling", "count": 1, "routes": ["connect (token_invalid)"], "first_at": "", "last_at": ""}
    assert (refused_event.target_type, refused_event.target_id) == ("meeting", str(i["session"]))
    assert details(refused_event)["count"] == 2
    assert details(refused_event)["routes"] == ["set_agenda_item (forbidden)"]
    await assert_chain_intact(server)


async def test_unknown_paths_and_bad_ids_are_not_audited(server: LiveServer) -> None:
    await flush(server)
    async with Client(server.url) as anonymous:
        for path in ("/static/no-such-file.css", "/no-such-page", "/api/no-such-route"):
            assert (await anonymous.page(path))[0] == 404, path
        # Not logged in: sent to the login page (401), which is not a refusal of the object.
        assert (await anonymous.page("/meetings/1"))[0] == 303
    async with Client(server.url) as governor:
        await governor.login("governor")
        for path in ("/static/no-such-file.css", "/no-such-page", "/api/no-such-route", "/meetings/abc"):
            assert (await governor.page(path))[0] == 404, path
    assert await flush(server) == 0


async def test_a_flood_of_distinct_ids_is_bounded(server: LiveServer) -> None:
    await flush(server)
    start = await head_seq(server)
    flood = 5000
    async with Client(server.url) as governor:
        await governor.login("governor")
        gate = asyncio.Semaphore(16)

        async def probe(n: int) -> None:
            async with gate:
                assert (await governor.api("GET", f"/api/meetings/{100_000 + n}"))[0] == 404

        await asyncio.gather(*(probe(n) for n in range(flood)))
    cap = await server.in_server(lambda s: asyncio.sleep(0, s.refusals.max_keys))
    pending = await server.in_server(lambda s: asyncio.sleep(0, s.refusals.pending_keys))
    assert pending <= cap
    written = await flush(server)
    rows = await refusal_rows(server, start)
    assert written == len(rows) <= cap
    assert sum(details(e)["count"] for e in rows) == flood  # every refusal counted, none lost
    (overflow,) = [e for e in rows if details(e)["kind"] == "overflow"]
    assert details(overflow)["kinds"] == {"not_found": details(overflow)["count"]}
    assert details(overflow)["routes"] == ["GET /api/meetings/{id}"]
    await assert_chain_intact(server)


async def test_many_addresses_share_one_catch_all_key_past_the_cap(server: LiveServer) -> None:
    async def flood(s: Services) -> tuple[int, int]:
        log = RefusalLog(s.db, max_keys=50)
        for n in range(400):
            for target in range(3):
                log.note(Caller(None, f"198.51.100.{n % 250}.{n}"), "not_found", target_type="meeting",
                         target_id=target)
        pending = log.pending_keys
        return pending, await log.flush()

    start = await head_seq(server)
    pending, written = await server.in_server(flood)
    assert pending == written <= 50
    rows = await refusal_rows(server, start)
    assert len(rows) == written and sum(details(e)["count"] for e in rows) == 1200
    catch_all = [e for e in rows if details(e)["kind"] == "overflow" and e.address == ""]
    assert len(catch_all) == 1 and catch_all[0].actor_id is None
    await assert_chain_intact(server)


async def test_the_audit_page_shows_refusals(server: LiveServer) -> None:
    async with Client(server.url) as governor:
        await governor.login("governor")
        await governor.api("GET", "/api/people")
    await flush(server)
    async with Client(server.url) as secretariat:
        await secretariat.login("secretariat")
        status, body = await secretariat.page(f"/audit?action={ACTION}")
    assert status == 200 and ACTION in body and "forbidden" in body


async def test_stopping_the_server_writes_what_is_still_counted(tmp_path_factory: pytest.TempPathFactory) -> None:
    live = LiveServer(make_config(tmp_path_factory.mktemp("refusals-stop"))).start()
    try:
        async with Client(live.url) as governor:
            await governor.login("governor")
            assert (await governor.api("GET", "/api/audit"))[0] == 403
    finally:
        live.stop()
    rows = await refusal_rows(live)
    assert [(e.target_type, details(e)["kind"], details(e)["count"]) for e in rows] == [("audit", "forbidden", 1)]
    await assert_chain_intact(live)
