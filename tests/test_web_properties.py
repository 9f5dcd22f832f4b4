"""Property-based: generated bodies thrown at every state-changing route (JSON API and forms) of a real
server never get a 500; each answer is a refusal or a success with the usual error shape."""

from __future__ import annotations

import asyncio
import os
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import CSRF_RE, LiveServer
from meetings.demo import DEMO_PASSWORD
from web.views import api, api_schedule, auth, console, meetings, offices, pages, people, record, register, room, schedule

#: Routes that would end the caller's own session or account (the rest may succeed or refuse).
SKIP = {("POST", "/logout"), ("DELETE", "/api/session"), ("POST", "/login"), ("POST", "/api/session"),
        ("PUT", "/api/people/{id}/password"), ("PATCH", "/api/people/{id}"), ("POST", "/people/{id}/edit")}
ROUTES = sorted({(r.method, r.path) for module in (api, api_schedule, auth, console, meetings, offices, pages,
                                                     people, record, register, room, schedule)
                 for r in module.routes if r.method in ("POST", "PUT", "PATCH", "DELETE")} - SKIP)
FIELDS = ["title", "kind", "host_office_id", "starts_at", "ends_at", "invited_office_ids", "invited_person_ids",
          "timezone", "weekday", "local_time", "duration_minutes", "starts_on", "until", "username", "password",
          "full_name", "office_id", "roles", "outcome", "text", "version", "note", "summaries", "position",
          "deadline", "reason", "notice_id", "code", "name_en", "name_km", "active", "weeks", "confirm",
          "person_id", "item_id", "quorum", "rules", "choice", "office_ids"]
IDS = st.sampled_from(["1", "2", "3", "7", "999999", "0", "abc", "99999999999999999999"])
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=False) | st.text(max_size=40)
           | st.sampled_from(["2027-01-08T08:00+07:00", "9999-12-31T23:30-14:00", "Asia/Phnom_Penh", "America",
                              "briefing", "cabinet_session", "adopted", "08:00", "2027-01-01", "yes"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=8)
KEYS = st.sampled_from(FIELDS) | st.sampled_from(FIELDS) | st.sampled_from(FIELDS) | st.text(max_size=12)
BODIES = st.dictionaries(KEYS, VALUES, min_size=1, max_size=8)


class Session:
    """A signed-in secretariat on its own event loop (Hypothesis drives a synchronous test)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.http: aiohttp.ClientSession = self.loop.run_until_complete(self._open())
        self.csrf = ""
        self.run(self._login())

    async def _open(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _login(self) -> None:
        async with self.http.get("/login") as response:
            self.csrf = CSRF_RE.search(await response.text()).group(1)  # type: ignore[union-attr]
        async with self.http.post("/login", data={"csrf_token": self.csrf, "username": "secretariat",
                                                  "password": DEMO_PASSWORD}, allow_redirects=False):
            pass
        async with self.http.get("/") as response:
            self.csrf = CSRF_RE.search(await response.text()).group(1)  # type: ignore[union-attr]

    async def send(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, str]:
        if path.startswith("/api/"):
            data, headers = json.dumps(body), {"Content-Type": "application/json", "X-CSRF-Token": self.csrf}
        else:
            form = {str(k)[:50]: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            form["csrf_token"] = self.csrf
            data, headers = urlencode(form), {"Content-Type": "application/x-www-form-urlencoded"}
        async with self.http.request(method, path, data=data, headers=headers, allow_redirects=False) as response:
            return response.status, await response.text()

    def close(self) -> None:
        self.run(self.http.close())
        self.loop.close()


@pytest.fixture(scope="module")
def session(live_server: LiveServer) -> Iterator[Session]:
    made = Session(live_server.url)
    yield made
    made.close()


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
@settings(max_examples=int(os.environ.get("CABINET_PROPERTY_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ids=st.lists(IDS, min_size=2, max_size=2), body=BODIES)
def test_no_generated_body_gets_a_500(session: Session, route: tuple[str, str], ids: list[str],
                                      body: dict[str, Any]) -> None:
    method, template = route
    path = template
    for name, value in zip(("{id}", "{item_id}", "{item}"), (ids[0], ids[1], ids[1]), strict=True):
        path = path.replace(name, value)
    status, text = session.run(session.send(method, path, body))
    assert status < 500, (method, path, body, status, text[:300])
    if path.startswith("/api/") and status >= 400:
        assert "error" in json.loads(text), text[:300]


def test_every_state_changing_route_is_covered() -> None:
    assert len(ROUTES) > 40 and ("POST", "/api/meetings") in ROUTES and ("POST", "/notices/read") in ROUTES
