"""Login, logout, cookies, session fixation, CSRF, throttling and timeouts over a real HTTP server."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from harness import Client, LiveServer, make_config
from meetings.demo import DEMO_PASSWORD as PASSWORD
from meetings.errors import LoginFailed, LoginThrottled
from meetings.models import LoginSession
from meetings.policy import Caller

CLI = Caller.cli()


async def test_login_sets_a_hardened_session_cookie_and_logout_kills_it(live_server: LiveServer) -> None:
    async with Client(live_server.url) as client:
        status, body = await client.page("/offices")
        assert status == 303  # anonymous: to the login page
        response = await client.login("secretariat", next_url="/offices")
        assert response.status == 303 and response.headers["Location"] == "/offices"
        cookie = response.cookies["cabinet_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert not cookie["secure"]  # plain http on loopback; Secure over TLS (see the TLS test)
        token = cookie.value
        status, body = await client.page("/offices")
        assert status == 200 and "Siem Reap" in body and "សៀមរាប" in body
        logout = await client.form("/logout", {})
        assert logout.status == 303 and logout.headers["Location"] == "/login"
        assert (await client.page("/offices"))[0] == 303
    # The old cookie is dead on the server, not only forgotten by the browser.
    async with Client(live_server.url) as replay:
        replay.jar.update_cookies({"cabinet_session": token})
        assert (await replay.page("/offices"))[0] == 303
        status, body = await replay.api("GET", "/api/me")
        assert status == 401 and body["error"]["code"] == "unauthenticated"


async def test_wrong_password_gets_a_generic_refusal(live_server: LiveServer) -> None:
    async with Client(live_server.url) as client:
        wrong = await client.login("observer", "not-the-password")
        unknown = await client.login("nobody-here", "not-the-password")
        assert wrong.status == unknown.status == 401
        assert client.cookie("cabinet_session") is None
        status, body = await client.page("/login")
        assert status == 200


async def test_session_fixation_is_impossible(live_server: LiveServer) -> None:
    async with Client(live_server.url) as client:
        planted = "attacker-chosen-session-id-0123456789abcdef"
        client.jar.update_cookies({"cabinet_session": planted})
        response = await client.login("chair")
        issued = response.cookies["cabinet_session"].value
        assert issued != planted
        first = issued
        # Logging in again, even as the same person, issues a new id and ends the old session.
        await client.page("/login")  # logged in: redirected, keeps the session CSRF token
        response = await client.form("/login", {"username": "chair", "password": "demo-password-2026", "next": "/"})
        assert response.status == 303
        second = response.cookies["cabinet_session"].value
        assert second != first
    async with Client(live_server.url) as old:
        old.jar.update_cookies({"cabinet_session": first})
        assert (await old.api("GET", "/api/me"))[0] == 401


async def test_csrf_is_required_on_every_state_changing_request(live_server: LiveServer) -> None:
    async with Client(live_server.url) as client:
        # Login form without its token.
        await client.page("/login")
        response = await client.form("/login", {"username": "secretariat", "password": "demo-password-2026"},
                                     csrf="")
        assert response.status == 403 and client.cookie("cabinet_session") is None
        await client.login("secretariat")
        good = client.csrf
        office = {"code": "CSRF1", "kind": "ministry", "name_en": "Forged", "name_km": "ក្លែង"}
        for token in ("", "0" * 64, "zz"):
            assert (await client.form("/offices/new", office, csrf=token)).status == 403
            status, body = await client.api("POST", "/api/offices", office, csrf=token)
            assert status == 403 and body["error"]["code"] == "csrf"
        # A token from another session does not work here.
        async with Client(live_server.url) as other:
            await other.login("secretariat")
            assert (await client.form("/offices/new", office, csrf=other.csrf)).status == 403
        # A cross-site Origin is refused even with a valid token.
        status, _ = await client.api("POST", "/api/offices", office, headers={"Origin": "http://evil.example"})
        assert status == 403
        status, offices = await client.api("GET", "/api/offices")
        assert "CSRF1" not in {o["code"] for o in offices["offices"]}
        # With the right token it works.
        assert good and (await client.form("/offices/new", office)).status == 303


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    config = make_config(tmp_path_factory.mktemp("strict"), **{
        "meetings.login_max_failures": 3, "meetings.login_max_failures_per_address": 8,
        "meetings.login_max_failures_per_account": 6,
        "meetings.session_idle_minutes": 5, "meetings.session_absolute_hours": 1})
    server = LiveServer(config).start()
    yield server
    server.stop()


async def test_throttling_after_repeated_failures(strict_server: LiveServer) -> None:
    async with Client(strict_server.url) as client:
        for _ in range(3):
            assert (await client.login("governor", "wrong-password-x")).status == 401
        throttled = await client.login("governor", "wrong-password-x")
        assert throttled.status == 429 and int(throttled.headers["Retry-After"]) > 0
        # Even the right password is refused while throttled, and other accounts are unaffected.
        assert (await client.login("governor")).status == 429
        assert (await client.login("commander")).status == 303
        status, body = await client.api("POST", "/api/session", {"username": "governor", "password": "x" * 12})
        assert status == 429 and body["error"]["code"] == "throttled"
    services = strict_server.services()
    try:
        events = await services.audit.recent(CLI, action_prefix="auth.login")
        actions = [e.action for e in events]
        assert actions.count("auth.login.failure") >= 3 and "auth.login.throttled" in actions
        assert "auth.login.success" in actions
    finally:
        await services.db.dispose()


async def test_idle_and_absolute_timeouts(strict_server: LiveServer) -> None:
    services = strict_server.services()
    try:
        for column, age in (("last_seen_at", dt.timedelta(minutes=6)), ("created_at", dt.timedelta(hours=2))):
            async with Client(strict_server.url) as client:
                await client.login("observer")
                assert (await client.api("GET", "/api/me"))[0] == 200
                async with services.db.write() as uow:
                    await uow.session.execute(update(LoginSession).values(
                        **{column: dt.datetime.now(dt.UTC) - age}).where(LoginSession.ended_at.is_(None)))
                assert (await client.api("GET", "/api/me"))[0] == 401
        async with services.db.read() as session:
            reasons = set((await session.execute(select(LoginSession.end_reason))).scalars())
        assert {"idle", "expired"} <= reasons
    finally:
        await services.db.dispose()


async def test_json_login_and_logout(live_server: LiveServer) -> None:
    async with Client(live_server.url) as client:
        status, body = await client.api("GET", "/api/session")
        assert status == 200 and body["authenticated"] is False
        client.csrf = body["csrf_token"]
        status, body = await client.api("POST", "/api/session", {"username": "governor", "password": "demo-password-2026"})
        assert status == 200 and body["me"]["username"] == "governor"
        client.csrf = body["csrf_token"]
        assert (await client.api("GET", "/api/me"))[1]["me"]["roles"] == ["delegate"]
        assert (await client.api("DELETE", "/api/session"))[0] == 200
        assert (await client.api("GET", "/api/me"))[0] == 401


def test_tls_cookie_is_secure_and_host_prefixed(tmp_path: Path) -> None:
    import asyncio

    server = LiveServer(make_config(tmp_path, **{"web.self_signed": True})).start()
    try:
        async def go() -> None:
            async with Client(server.url) as client:
                response = await client.login("secretariat")
                assert response.status == 303
                cookie = response.cookies["__Host-cabinet_session"]
                assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
                async with client.http.get("/api/health") as health:
                    assert health.headers["Strict-Transport-Security"].startswith("max-age=")
        asyncio.run(go())
        assert (tmp_path / "tls" / "self-signed.crt").exists()
    finally:
        server.stop()


async def test_language_links_stay_on_this_site(live_server: LiveServer) -> None:
    """``GET //evil.example/x`` must not render ``href="//evil.example/x?lang=km"`` (another host)."""
    async with Client(live_server.url) as client:
        for target in ("//evil.example/x", "/\\evil.example/x", "///evil.example/x"):
            async with client.http.get(live_server.url + target, allow_redirects=False) as response:
                body = await response.text()
            hrefs = re.findall(r'href="([^"]*)\?lang=', body)
            assert hrefs, (target, response.status)
            for href in hrefs:
                assert href.startswith("/") and not href.startswith(("//", "/\\")), (target, href)


async def test_login_redirects_only_to_paths_on_this_site(live_server: LiveServer) -> None:
    """``next`` after login: browsers strip tabs/newlines and read ``\\`` as ``/``, so those go home."""
    hostile = ["/\t/evil.example", "/\n/evil.example", "/\r\n/x", "//evil.example", "/\\evil.example",
               "https://evil.example/", "/ /evil.example", "/\x7f/evil.example", "javascript:alert(1)", ""]
    for target in hostile:
        async with Client(live_server.url) as client:
            response = await client.login("observer", next_url=target)
            assert response.status == 303 and response.headers["Location"] == "/", (target, response.headers)
    async with Client(live_server.url) as client:
        response = await client.login("observer", next_url="/meetings?lang=km")
        assert response.headers["Location"] == "/meetings?lang=km"


async def test_throttling_binds_the_account_and_address_pair_with_a_backstop(strict_server: LiveServer) -> None:
    """A guesser at one address cannot lock the chair out at another; a flood of throttled attempts is
    audited once per period; guessing from many addresses meets the per-account backstop."""
    services = strict_server.services()
    try:
        guesser, chair_office = Caller(None, "198.51.100.7"), Caller(None, "198.51.100.8")
        for _ in range(3):
            with pytest.raises(LoginFailed):
                await services.auth.login("chair", "wrong-password-x", guesser)
        for _ in range(30):
            with pytest.raises(LoginThrottled):
                await services.auth.login("chair", PASSWORD, guesser)
        assert (await services.auth.login("chair", PASSWORD, chair_office)).principal.username == "chair"
        events = await services.audit.recent(CLI, action_prefix="auth.login.throttled", limit=100)
        assert len([e for e in events if e.address == "198.51.100.7"]) == 1
        # The backstop (strict server: 6 per account from anywhere): three more addresses, two tries each.
        for n in range(3):
            for _ in range(2):
                with pytest.raises(LoginFailed):
                    await services.auth.login("observer", "wrong-password-x", Caller(None, f"203.0.113.{n}"))
        with pytest.raises(LoginThrottled):
            await services.auth.login("observer", PASSWORD, Caller(None, "203.0.113.200"))
    finally:
        await services.db.dispose()


async def test_headers_name_no_versions_and_scripts_connect_only_to_this_site(live_server: LiveServer) -> None:
    async with Client(live_server.url) as client:
        for path in ("/login", "/static/js/signaling.js", "/no-such-page", "/api/health"):
            async with client.http.get(path) as response:
                assert response.headers["Server"] == "Cabinet", path
                csp = response.headers["Content-Security-Policy"]
                assert "connect-src 'self';" in csp and "ws:" not in csp and "wss:" not in csp, path
