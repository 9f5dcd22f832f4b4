"""Every role (and an anonymous visitor) against every page and API route, allowed and refused."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from harness import Client, LiveServer
from meetings.policy import Caller

ROLES = ["secretariat", "chair", "governor", "commander", "observer"]
ALL = set(ROLES)
SEC = {"secretariat"}
CLI = Caller.cli()


@pytest.fixture(scope="module")
def ids(live_server: LiveServer) -> dict[str, int]:
    async def read() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        services = live_server.services()
        try:
            return ({o.code: o.id for o in await services.offices.list(CLI)},
                    {p.username: p.id for p in await services.people.list(CLI)},
                    {m.kind.value: m.id for m in await services.meetings.list_visible(CLI)})
        finally:
            await services.db.dispose()

    offices, people, meetings = asyncio.run(read())
    return {"ocm": offices["OCM"], "kh17": offices["KH-17"], "mr4": offices["MR-4"], "mr1": offices["MR-1"], "observer": people["observer"],
            "session": meetings["cabinet_session"], "briefing": meetings["briefing"]}


def page_matrix(i: dict[str, int]) -> list[tuple[str, dict[str, int]]]:
    """(path, expected status per role); roles not named get the 'other' status."""
    def only(allowed: set[str], refused: int = 403) -> dict[str, int]:
        return {r: 200 if r in allowed else refused for r in ROLES}

    return [
        ("/", only(ALL)),
        ("/offices", only(ALL)),
        ("/offices/new", only(SEC)),
        (f"/offices/{i['kh17']}/edit", only(SEC)),
        ("/people", only(SEC)),
        ("/people/new", only(SEC)),
        (f"/people/{i['observer']}/edit", only(SEC)),
        ("/meetings", only(ALL)),
        ("/meetings/new", only({"secretariat", "commander"})),
        (f"/meetings/{i['session']}", only(ALL - {"commander"}, 404)),
        (f"/meetings/{i['briefing']}", only({"commander"}, 404)),
        (f"/meetings/{i['session']}/room", only(ALL - {"commander"}, 404)),
        (f"/meetings/{i['session']}/console", {**only({"secretariat", "chair"}), "commander": 404}),
        (f"/meetings/{i['briefing']}/console", only({"commander"}, 404)),
        ("/audit", only(SEC)),
        ("/nodes", only(SEC)),
    ]


def api_matrix(i: dict[str, int], role: str) -> list[tuple[str, str, Any, dict[str, int]]]:
    """(method, path, body, expected per role). Bodies are unique per role so allowed writes never collide."""
    start = dt.datetime(2027, 3, 5, 1, 0, tzinfo=dt.UTC)
    span = {"starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(hours=2)).isoformat()}

    def only(allowed: set[str], ok: int = 200, refused: int = 403) -> dict[str, int]:
        return {r: ok if r in allowed else refused for r in ROLES}

    tag = role[:3].upper()
    return [
        ("GET", "/api/health", None, only(ALL)),
        ("GET", "/api/me", None, only(ALL)),
        ("GET", "/api/offices", None, only(ALL)),
        ("POST", "/api/offices", {"code": f"NEW-{tag}", "kind": "ministry", "name_en": "N", "name_km": "ថ"},
         only(SEC, 201)),
        ("PATCH", f"/api/offices/{i['kh17']}", {"name_en": "Siem Reap"}, only(SEC)),
        ("GET", "/api/people", None, only(SEC)),
        ("GET", f"/api/people/{i['observer']}", None, only(SEC)),
        ("POST", "/api/people", {"username": f"new.{role}", "full_name": "N", "office_id": i["kh17"],
                                 "roles": ["observer"], "password": "a-long-password-1"}, only(SEC, 201)),
        ("PATCH", f"/api/people/{i['observer']}", {"full_name": "Ly Channary"}, only(SEC)),
        ("PUT", f"/api/people/{i['observer']}/password", {"password": "demo-password-2026"}, only(SEC)),
        ("GET", "/api/meetings", None, only(ALL)),
        ("POST", "/api/meetings", {"title": f"Session {tag}", "kind": "cabinet_session", "host_office_id": i["ocm"],
                                   **span}, only(SEC, 201)),
        ("POST", "/api/meetings", {"title": f"Briefing {tag}", "kind": "briefing", "host_office_id": i["mr4"],
                                   **span}, only({"secretariat", "commander"}, 201)),
        ("GET", f"/api/meetings/{i['session']}", None, only(ALL - {"commander"}, refused=404)),
        ("GET", f"/api/meetings/{i['briefing']}", None, only({"commander"}, refused=404)),
        ("POST", f"/api/meetings/{i['session']}/invitations", {"office_ids": [i["mr1"]]},
         {**only(SEC), "commander": 404}),
        ("POST", f"/api/meetings/{i['session']}/join-token", None, only(ALL - {"commander"}, refused=404)),
        ("POST", f"/api/meetings/{i['briefing']}/join-token", None, only({"commander"}, refused=404)),
        ("GET", "/api/audit", None, only(SEC)),
        ("GET", "/api/audit/verify", None, only(SEC)),
    ]


@pytest.mark.parametrize("role", ROLES)
async def test_pages_and_api_by_role(live_server: LiveServer, ids: dict[str, int], role: str) -> None:
    failures: list[str] = []
    async with Client(live_server.url) as client:
        assert (await client.login(role)).status == 303
        for path, expected in page_matrix(ids):
            status, _ = await client.page(path)
            if status != expected[role]:
                failures.append(f"GET {path}: {status}, expected {expected[role]}")
        await client.page("/")  # refresh the CSRF token
        for method, path, body, expected in api_matrix(ids, role):
            status, reply = await client.api(method, path, body)
            if status != expected[role]:
                failures.append(f"{method} {path}: {status} {reply}, expected {expected[role]}")
            elif status >= 400:
                assert set(reply) == {"error"} and {"code", "message"} <= set(reply["error"]), reply
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ROLES)
async def test_form_posts_by_role(live_server: LiveServer, ids: dict[str, int], role: str) -> None:
    tag = role[:3].upper()
    forms = [
        ("/offices/new", {"code": f"FORM-{tag}", "kind": "province", "name_en": "F", "name_km": "ព"}, SEC),
        ("/people/new", {"username": f"form.{role}", "full_name": "F", "office_id": str(ids["kh17"]),
                         "roles": "observer", "password": "a-long-password-2"}, SEC),
        ("/meetings/new", {"title": f"Form {tag}", "kind": "briefing", "host_office_id": str(ids["mr4"]),
                           "starts_at": "2027-04-02T08:00", "ends_at": "2027-04-02T09:00"},
         {"secretariat", "commander"}),
    ]
    async with Client(live_server.url) as client:
        await client.login(role)
        for path, data, allowed in forms:
            response = await client.form(path, data)
            assert response.status == (303 if role in allowed else 403), (path, response.status)


async def test_anonymous_visitor(live_server: LiveServer, ids: dict[str, int]) -> None:
    async with Client(live_server.url) as client:
        for path, _ in page_matrix(ids):
            status, _ = await client.page(path)
            assert status == 303, path
        await client.page("/login")
        for method, path, body, _ in api_matrix(ids, "anonymous"):
            status, reply = await client.api(method, path, body)
            if path == "/api/health":
                assert status == 200
            else:
                assert status in (401, 403), (method, path, status)
                assert reply["error"]["code"] in ("unauthenticated", "csrf")


async def test_refused_writes_changed_nothing(live_server: LiveServer, ids: dict[str, int]) -> None:
    async with Client(live_server.url) as client:
        await client.login("secretariat")
        _, offices = await client.api("GET", "/api/offices")
        codes = {o["code"] for o in offices["offices"]}
        _, people = await client.api("GET", "/api/people")
        names = {p["username"] for p in people["people"]}
        for role in ROLES:
            tag = role[:3].upper()
            assert (f"NEW-{tag}" in codes) is (role == "secretariat")
            assert (f"FORM-{tag}" in codes) is (role == "secretariat")
            assert (f"new.{role}" in names) is (role == "secretariat")
        status, verify = await client.api("GET", "/api/audit/verify")
        assert status == 200 and verify["ok"]
