"""Bad input gets a 400 naming the field, never a 500: the cases an attacker found, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from harness import Client, LiveServer


@pytest.fixture
async def secretariat(live_server: LiveServer) -> AsyncIterator[Client]:
    async with Client(live_server.url) as client:
        await client.login("secretariat")
        await client.page("/")
        yield client


async def raw_json(client: Client, method: str, path: str, body: str) -> tuple[int, object]:
    async with client.http.request(method, path, data=body, headers={
            "Content-Type": "application/json", "X-CSRF-Token": client.csrf or ""}) as response:
        return response.status, await response.json(content_type=None)


async def test_hostile_json_bodies_are_400(live_server: LiveServer) -> None:
    async with Client(live_server.url) as anonymous:
        await anonymous.page("/login")
        for body in ("[" * 100_000 + "]" * 100_000, '{"username": ' + "9" * 5000 + "}", "{\"a\": 1e999999}"):
            status, reply = await raw_json(anonymous, "POST", "/api/session", body)
            assert status in (400, 401), (body[:20], status, reply)


async def test_bad_ids_and_numbers_are_400_with_the_field(live_server: LiveServer, secretariat: Client) -> None:
    async with Client(live_server.url) as governor:
        await governor.login("governor")
        await governor.page("/")
        for value in ("abc", str(10**30), "1.5", "-3"):
            response = await governor.form("/notices/read", {"notice_id": value})
            assert response.status == 400, (value, response.status)
    base = {"title": "Bad input", "kind": "briefing", "host_office_id": 1,
            "starts_at": "2027-01-08T08:00+07:00", "ends_at": "2027-01-08T09:00+07:00"}
    cases = [
        ({"invited_office_ids": [10**30]}, "invited_office_ids"),
        ({"invited_office_ids": ["1e999"]}, "invited_office_ids"),
        ({"host_office_id": 10**30}, "host_office_id"),
        ({"host_office_id": True}, "host_office_id"),
        ({"starts_at": "9999-12-31T23:30-14:00"}, "starts_at"),
        ({"ends_at": "0001-01-01T00:00+14:00"}, "ends_at"),
    ]
    for change, field in cases:
        status, reply = await secretariat.api("POST", "/api/meetings", {**base, **change})
        assert status == 400 and reply["error"]["field"] == field, (change, status, reply)
    status, reply = await raw_json(secretariat, "POST", "/api/meetings",
                                   '{"title": "x", "kind": "briefing", "host_office_id": 1e999, '
                                   '"starts_at": "2027-01-08T08:00+07:00", "ends_at": "2027-01-08T09:00+07:00"}')
    assert status == 400 and reply["error"]["field"] == "host_office_id", reply  # type: ignore[index]
    series = {"title": "Bad zone", "kind": "briefing", "host_office_id": 1, "weekday": 4, "local_time": "08:00",
              "duration_minutes": 60, "starts_on": "2027-01-01"}
    for tz in ("America", "a" * 300, "../../etc/passwd", "Asia/Phnom_Penh\x00"):
        status, reply = await secretariat.api("POST", "/api/series", {**series, "timezone": tz})
        assert status == 400 and reply["error"]["field"] == "timezone", (tz, status, reply)
    for query in ("limit=abc", f"limit={10**30}", f"before={10**30}"):
        status, reply = await secretariat.api("GET", f"/api/audit?{query}")
        assert status == 400, (query, status, reply)
