"""Obtaining a join token by logging in, against the real web application on 127.0.0.1."""

from __future__ import annotations

import io

import aiohttp
import pytest

from harness import LiveServer

from bots.cli import _token, build_parser
from bots.errors import LoginError
from bots.login import fetch_join_token
from meetings.demo import DEMO_PASSWORD


async def _a_meeting_id(url: str) -> int:
    async with aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get("/api/session") as r:
            csrf = (await r.json())["csrf_token"]
        async with http.post("/api/session", json={"username": "chair", "password": DEMO_PASSWORD},
                             headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
        async with http.get("/api/meetings") as r:
            meetings = (await r.json())["meetings"]
    return int(meetings[0]["id"])


async def test_login_gives_a_join_token(live_server: LiveServer) -> None:
    meeting_id = await _a_meeting_id(live_server.url)
    token = await fetch_join_token(live_server.url, "chair", DEMO_PASSWORD, meeting_id)
    assert isinstance(token, str) and len(token) > 20
    # The CLI reads the password from stdin.
    args = build_parser().parse_args(["--url", live_server.url, "--username", "chair", "--password-stdin",
                                      "--meeting", str(meeting_id)])
    assert await _token(args, io.StringIO(DEMO_PASSWORD + "\n"))


async def test_wrong_password_is_a_login_error(live_server: LiveServer) -> None:
    with pytest.raises(LoginError, match="HTTP 4"):
        await fetch_join_token(live_server.url, "chair", "wrong-password", 1)


async def test_unreachable_server_is_a_login_error() -> None:
    with pytest.raises(LoginError):
        await fetch_join_token("http://127.0.0.1:9", "chair", "x", 1)
