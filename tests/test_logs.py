"""Structured logs never contain passwords, tokens or cookies."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from cabinet import logs
from harness import Client, LiveServer

PASSWORD = "demo-password-2026"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


async def test_a_whole_session_logs_no_secrets(live_server: LiveServer, captured: io.StringIO) -> None:
    async with Client(live_server.url) as client:
        await client.login("secretariat", "wrong-password-here")
        await client.login("secretariat", PASSWORD)
        session = client.cookie("cabinet_session")
        csrf = client.csrf
        status, body = await client.api("POST", "/api/meetings/1/join-token")
        assert status == 200
        join_token = body["token"]
        await client.api("PUT", "/api/people/5/password", {"password": "another-long-password"})
        await client.api("GET", f"/api/me?token={join_token}")
        # The secret calendar feed: its address is a bearer secret, fetched without a login.
        async with client.http.post("/calendar-feed", data={"csrf_token": client.csrf}) as response:
            page = await response.text()
        feed_token = re.search(r"/calendar/([A-Za-z0-9_-]{20,})\.ics", page).group(1)  # type: ignore[union-attr]
        async with client.http.get(f"/calendar/{feed_token}.ics") as response:
            assert response.status == 200 and "BEGIN:VCALENDAR" in await response.text()
        async with client.http.get(f"/calendar/{feed_token[::-1]}.ics") as response:
            assert response.status == 404  # a wrong (maybe revoked) feed address is not logged either
        await client.form("/logout", {})
    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "http.request" for line in lines)  # logging did happen
    assert any(line.get("path") == "/calendar/***.ics" for line in lines)
    for secret in (PASSWORD, "wrong-password-here", "another-long-password", session, csrf, join_token,
                   feed_token, feed_token[::-1]):
        assert secret and secret not in text


def test_scrubbing_of_free_text_and_extras() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "login password=%s token: %s", ("hunter22", "abc"), None)
    record.cookie = "cabinet_session=zzz"
    record.session_token = "zzz"
    record.event = "auth"
    out = json.loads(logs.JsonFormatter().format(record))
    assert "hunter22" not in out["message"] and "abc" not in out["message"]
    assert out["cookie"] == "***" and out["session_token"] == "***" and out["event"] == "auth"


def test_cookie_and_session_pairs_in_free_text_are_masked() -> None:
    """An over-long Cookie header quoted in a parser error must not carry the session cookie."""
    line = "Got more than 8190 bytes when reading Cookie: __Host-cabinet_session=s3cr3tvalue; cabinet_csrf=abc123"
    assert "s3cr3tvalue" not in logs.scrub(line) and "abc123" not in logs.scrub(line)
    assert logs.scrub("join_token: eyJhbGciOi.x") == "join_token: ***"


def test_socketio_and_engineio_log_only_through_the_structured_handler() -> None:
    """Given False, python-socketio and python-engineio hang a StreamHandler of their own on their loggers,
    printing raw tracebacks past the JSON formatter; the server passes its loggers instead and adds none.
    (Other servers in this test process, such as the bots' fake one, may have added some: compare.)"""
    from media.config import MediaConfig
    from signaling.config import SignalingConfig
    from signaling.server import Signaling

    loggers = [logging.getLogger(name) for name in ("socketio.server", "engineio.server")]
    before = [list(logger.handlers) for logger in loggers]
    signaling = Signaling(None, SignalingConfig(), MediaConfig())  # type: ignore[arg-type]
    assert [list(logger.handlers) for logger in loggers] == before
    assert signaling.sio.logger is loggers[0] and signaling.sio.eio.logger is loggers[1]
