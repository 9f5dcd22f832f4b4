"""Before the session over real HTTP: every route keeps a briefing from an uninvited governor; documents,
calendar feeds, positions and the series pages through the API and the pages, by role."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp

import icalendar
import pytest

from harness import Client, LiveServer
from meetings.policy import Caller

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ROLES = ["secretariat", "chair", "governor", "commander", "observer"]


@pytest.fixture(scope="module")
def ids(live_server: LiveServer) -> dict[str, int]:
    async def read() -> dict[str, int]:
        services = live_server.services()
        try:
            meetings = await services.meetings.list_visible(Caller.cli())
            briefing = next(m for m in meetings if m.kind.value == "briefing")
            session = await services.meetings.get(Caller.cli(), 1)
            series = (await services.schedule.list_series(Caller.cli()))[0]
            return {"briefing": briefing.id, "session": 1, "item": session.agenda[1].id, "series": series.id,
                    "occurrence": 2, "item_last": session.agenda[3].id}
        finally:
            await services.db.dispose()

    return asyncio.run(read())


async def test_a_briefing_is_invisible_to_an_uninvited_governor_on_every_route(live_server: LiveServer,
                                                                             ids: dict[str, int]) -> None:
    b = ids["briefing"]
    async with Client(live_server.url) as commander:
        await commander.login("commander")
        await commander.page("/")
        status, _ = await commander.api("POST", f"/api/briefing-item-check/{b}")  # unknown route: 404
        assert status in (404, 405)
        # The commander attaches a document to the briefing via the services (it has no agenda yet).
        services = live_server.services()
        try:
            from meetings.services.common import principal_of

            person = await services.people.find(Caller.cli(), "commander")
            item = await services.agenda.add(Caller(principal_of(person)), b, title="Border situation")
        finally:
            await services.db.dispose()
        async with commander.http.post(f"/api/agenda-items/{item.id}/documents", data=PDF, headers={
                "Content-Type": "application/pdf", "X-CSRF-Token": commander.csrf or "",
                "X-Filename": "border.pdf"}) as response:
            assert response.status == 201
            document = (await response.json())["document"]
        status, body = await commander.api("POST", "/api/me/calendar-feed")
        assert status == 201
        async with commander.http.get(body["url"].removeprefix(live_server.url)) as response:
            assert f"meeting-{b}@cabinet.meetings" in await response.text()
    async with Client(live_server.url) as governor:
        await governor.login("governor")
        status, body = await governor.page("/meetings")
        assert "Security Briefing" not in body
        status, body = await governor.page("/")
        assert "Security Briefing" not in body
        assert (await governor.page(f"/meetings/{b}"))[0] == 404
        status, listing = await governor.api("GET", "/api/meetings")
        assert b not in {m["id"] for m in listing["meetings"]}
        for path in (f"/api/meetings/{b}", f"/api/meetings/{b}/calendar.ics", f"/meetings/{b}/calendar.ics",
                     f"/api/meetings/{b}/documents", f"/documents/{document['id']}",
                     f"/api/documents/{document['id']}", f"/api/meetings/{b}/tally", f"/api/meetings/{b}/positions"):
            status, _ = await governor.page(path)
            assert status == 404, path
        # A hidden briefing's document or agenda item answers exactly as a missing one.
        await governor.page("/")
        assert (await governor.api("GET", f"/api/documents/{document['id']}")
                == await governor.api("GET", "/api/documents/999999"))
        hidden = await governor.http.post(f"/api/agenda-items/{item.id}/documents", data=PDF, headers={
            "Content-Type": "application/pdf", "X-CSRF-Token": governor.csrf or "", "X-Filename": "x.pdf"})
        missing = await governor.http.post("/api/agenda-items/999999/documents", data=PDF, headers={
            "Content-Type": "application/pdf", "X-CSRF-Token": governor.csrf or "", "X-Filename": "x.pdf"})
        assert (hidden.status, await hidden.json()) == (missing.status, await missing.json())
        assert (await governor.api("POST", f"/api/meetings/{b}/join-token"))[0] == 404
        status, body = await governor.api("POST", "/api/me/calendar-feed")
        async with governor.http.get(body["url"].removeprefix(live_server.url)) as response:
            feed = icalendar.Calendar.from_ical(await response.read())
        uids = {str(e["uid"]) for e in feed.walk("VEVENT")}
        assert "meeting-1@cabinet.meetings" in uids and f"meeting-{b}@cabinet.meetings" not in uids


async def test_documents_over_http(live_server: LiveServer, ids: dict[str, int]) -> None:
    async with Client(live_server.url) as client:
        await client.login("secretariat")
        await client.page("/")
        headers = {"Content-Type": "application/pdf", "X-CSRF-Token": client.csrf or "", "X-Filename": "budget.pdf"}
        async with client.http.post(f"/api/agenda-items/{ids['item']}/documents", data=PDF,
                                    headers=headers) as response:
            assert response.status == 201
            doc = (await response.json())["document"]
        assert doc["sha256"] == hashlib.sha256(PDF).hexdigest()
        async with client.http.post(f"/api/agenda-items/{ids['item']}/documents", data=b"MZ not a pdf",
                                    headers=headers) as response:
            assert response.status == 400 and (await response.json())["error"]["message"] == \
                "the file is not a PDF document"
        async with client.http.post(f"/api/agenda-items/{ids['item']}/documents", data=PDF,
                                    headers={**headers, "Content-Type": "text/plain"}) as response:
            assert response.status == 400
        status, listing = await client.api("GET", f"/api/meetings/{ids['session']}/documents")
        assert [d["id"] for d in listing["documents"]] == [doc["id"]]
        status, page = await client.page(f"/meetings/{ids['session']}")
        assert doc["sha256"] in page and "budget.pdf" in page
        # The meeting page's form takes documents larger than the 1 MiB every other request is held to.
        large = PDF + b"%" + b"x" * (3 * 1024 * 1024) + b"\n%%EOF\n"
        form = aiohttp.FormData()
        form.add_field("csrf_token", client.csrf or "")
        form.add_field("file", large, filename="annex.pdf", content_type="application/pdf")
        async with client.http.post(f"/agenda-items/{ids['item']}/documents", data=form,
                                    allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        status, listing = await client.api("GET", f"/api/meetings/{ids['session']}/documents")
        annex = next(d for d in listing["documents"] if d["filename"] == "annex.pdf")
        assert annex["sha256"] == hashlib.sha256(large).hexdigest() and annex["size_bytes"] == len(large)
        # ... while another form post of that size is still refused.
        async with client.http.post(f"/meetings/{ids['session']}/positions", data={
                "csrf_token": client.csrf or "", "x": "y" * (2 * 1024 * 1024)}) as response:
            assert response.status == 413
    async with Client(live_server.url) as governor:
        await governor.login("governor")
        async with governor.http.get(f"/documents/{doc['id']}") as response:
            assert response.status == 200 and await response.read() == PDF
            assert response.headers["X-Content-SHA256"] == doc["sha256"]
            assert "attachment" in response.headers["Content-Disposition"]
        await governor.page("/")
        async with governor.http.post(f"/api/agenda-items/{ids['item']}/documents", data=PDF, headers={
                "Content-Type": "application/pdf", "X-CSRF-Token": governor.csrf or ""}) as response:
            assert response.status == 403


async def test_actions_by_role(live_server: LiveServer, ids: dict[str, int]) -> None:
    """Each new action, allowed and refused, per role (the permission matrix for this issue)."""
    s, item = ids["session"], ids["item_last"]
    expected = [
        # (method, path, body, {role: status})
        ("GET", "/api/series", None, dict.fromkeys(ROLES, 200)),
        ("GET", f"/api/series/{ids['series']}", None, {"secretariat": 200, "chair": 200, "governor": 200,
                                                        "commander": 404, "observer": 200}),
        ("GET", f"/api/meetings/{s}/tally", None, {"secretariat": 200, "chair": 200, "governor": 403,
                                                   "commander": 404, "observer": 403}),
        ("PUT", f"/api/meetings/{s}/items/{item}/position", {"stance": "objection"},
            {"secretariat": 403, "chair": 403, "governor": 200, "commander": 404, "observer": 403}),
        ("GET", f"/api/meetings/{s}/calendar.ics", None, {"secretariat": 200, "chair": 200, "governor": 200,
                                                          "commander": 404, "observer": 200}),
        ("POST", "/api/me/calendar-feed", None, dict.fromkeys(ROLES, 201)),
        ("GET", "/api/notices", None, dict.fromkeys(ROLES, 200)),
        ("PUT", f"/api/meetings/{s}/positions-deadline", {"positions_deadline": None},
            {"secretariat": 200, "chair": 403, "governor": 403, "commander": 404, "observer": 403}),
        ("POST", f"/api/meetings/{ids['occurrence']}/move", {"starts_at": "x", "ends_at": "y"},
            {"secretariat": 400, "chair": 403, "governor": 403, "commander": 404, "observer": 403}),
        ("POST", "/api/series", {"title": "T", "kind": "cabinet_session", "weekday": 9},
            {"secretariat": 400, "chair": 403, "governor": 403, "commander": 403, "observer": 403}),
        ("POST", f"/api/meetings/{s}/adopt-en-bloc", None,
            {"secretariat": 403, "chair": 403, "governor": 403, "commander": 404, "observer": 403}),
    ]
    pages = {f"/series": {"secretariat": 200, "chair": 403, "governor": 403, "commander": 200, "observer": 403},
             f"/series/{ids['series']}": {"secretariat": 200, "chair": 200, "governor": 200, "commander": 404,
                                          "observer": 200}}
    failures = []
    for role in ROLES:
        async with Client(live_server.url) as client:
            await client.login(role)
            for path, want in pages.items():
                status, _ = await client.page(path)
                if status != want[role]:
                    failures.append(f"{role} GET {path}: {status} != {want[role]}")
            await client.page("/")
            for method, path, body, want in expected:
                status, reply = await client.api(method, path, body)
                exp = want[role]
                if path.endswith("adopt-en-bloc") and role in ("secretariat", "chair"):
                    exp = {201, 409}  # allowed: adopts (201) or nothing left to adopt (409)
                if status not in (exp if isinstance(exp, set) else {exp}):
                    failures.append(f"{role} {method} {path}: {status} {reply} != {exp}")
    assert not failures, "\n".join(failures)


async def test_cancel_and_move_pages_and_home_notices(live_server: LiveServer, ids: dict[str, int]) -> None:
    async with Client(live_server.url) as client:
        await client.login("secretariat")
        status, page = await client.page(f"/series/{ids['series']}")
        assert status == 200 and 'id="occurrences"' in page
        response = await client.form(f"/meetings/{ids['occurrence'] + 2}/cancel", {"reason": "Holiday"})
        assert response.status == 303
        status, series = await client.api("GET", f"/api/series/{ids['series']}")
        states = {o["id"]: (o["state"], o["sequence"]) for o in series["occurrences"]}
        assert states[ids["occurrence"] + 2] == ("cancelled", 1) and states[1][0] == "scheduled"
    async with Client(live_server.url) as governor:
        await governor.login("governor")
        status, notices = await governor.api("GET", "/api/notices")
        assert any(n["kind"] == "cancelled" and "Holiday" in n["text"] for n in notices["notices"])
        status, home = await governor.page("/?lang=km")
        assert "សេចក្ដីជូនដំណឹង" in home and "Holiday" in home


async def test_an_anonymous_upload_is_refused_before_its_body_is_read(live_server: LiveServer) -> None:
    """The request announces 20 MiB and sends 1 KiB: the refusal must come without waiting for the rest."""
    host, port = "127.0.0.1", int(live_server.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection(host, port)
    try:
        boundary = "b0undary"
        writer.write((f"POST /agenda-items/1/documents HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Origin: http://{host}:{port}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                      f"Content-Length: {20 * 1024 * 1024}\r\n\r\n--{boundary}\r\n").encode() + b"x" * 1024)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.split()[1] in (b"401", b"303"), status_line
    finally:
        writer.close()
