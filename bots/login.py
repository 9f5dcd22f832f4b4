"""Obtain join tokens by logging in over Cabinet's JSON API (as an operator would in a browser).

``GET /api/session`` (pre-session cookie + CSRF token), ``POST /api/session`` with the
credentials (new CSRF token bound to the session), then ``POST /api/meetings/{id}/join-token``
once per (re)connection, like the web page (tokens are single-use and short-lived).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from .errors import LoginError
from .tokens import TokenSource

#: HTTP statuses after which trying again cannot help: 401 (login refused / ended: after one new
#: login), 403 (not allowed), 404 (no such meeting, or not invited). Others (network, 429, 5xx) retry.
FATAL_STATUSES = frozenset({401, 403, 404})


async def _json(response: aiohttp.ClientResponse) -> tuple[dict[str, Any] | None, str, str]:
    """(body, error code, error message) of a JSON API answer."""
    try:
        body = await response.json(content_type=None)
    except (aiohttp.ContentTypeError, ValueError):
        body = None
    if not isinstance(body, dict):
        return None, "", ""
    error = body.get("error")
    if isinstance(error, dict):
        return body, str(error.get("code", "")), str(error.get("message", ""))
    return body, "", str(error or "")


def _failure(response: aiohttp.ClientResponse, message: str) -> LoginError:
    text = f"{response.method} {response.url.path} failed with HTTP {response.status} {message}".strip()
    return LoginError(text, fatal=response.status in FATAL_STATUSES, status=response.status)


class LoginTokenSource(TokenSource):
    """Logs in as ``username`` (lazily, and again when the login session has ended) and mints a join
    token for ``meeting_id`` on every :meth:`token` call. Keeps the password to log in again."""

    refreshable = True

    def __init__(self, base_url: str, username: str, password: str, meeting_id: int, *, verify_tls: bool = True,
                 timeout: float = 20.0) -> None:
        self.base_url = base_url
        self.username = username
        self.meeting_id = int(meeting_id)
        self._password = password
        self._verify_tls = verify_tls
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None
        self._csrf: str | None = None
        #: Logins made so far (a second one means the session had ended).
        self.logins = 0

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for IP hosts such as 127.0.0.1
            connector = aiohttp.TCPConnector(ssl=None if self._verify_tls else False)
            self._http = aiohttp.ClientSession(self.base_url, cookie_jar=jar, connector=connector,
                                               timeout=aiohttp.ClientTimeout(total=self._timeout))
            self._csrf = None
        return self._http

    async def login(self) -> None:
        http = self._session()
        http.cookie_jar.clear()
        self._csrf = None
        async with http.get("/api/session") as response:
            body, _, message = await _json(response)
            if response.status >= 400 or body is None:
                raise _failure(response, message)
        csrf = body.get("csrf_token")
        if not csrf:
            raise LoginError("GET /api/session gave no csrf_token")
        async with http.post("/api/session", json={"username": self.username, "password": self._password},
                             headers={"X-CSRF-Token": csrf}) as response:
            body, _, message = await _json(response)
            if response.status >= 400 or body is None:
                raise _failure(response, message)
        if not body.get("csrf_token"):
            raise LoginError("login gave no csrf_token")
        self._csrf = str(body["csrf_token"])
        self.logins += 1

    async def _mint(self) -> tuple[aiohttp.ClientResponse, dict[str, Any] | None, str, str]:
        http = self._session()
        async with http.post(f"/api/meetings/{self.meeting_id}/join-token",
                             headers={"X-CSRF-Token": self._csrf or ""}) as response:
            body, code, message = await _json(response)
        return response, body, code, message

    async def token(self) -> str:
        """A new join token; LoginError (``fatal`` when refused rather than unreachable)."""
        try:
            if self._csrf is None:
                await self.login()
            response, body, code, message = await self._mint()
            if response.status == 401 or (response.status == 403 and code == "csrf"):
                await self.login()  # the login session ended (idle, expired, server lost it): once more
                response, body, code, message = await self._mint()
            if response.status >= 400 or body is None:
                raise _failure(response, message)
        except aiohttp.ClientError as exc:
            raise LoginError(f"cannot reach {self.base_url}: {exc}") from exc
        except asyncio.TimeoutError as exc:
            raise LoginError(f"no answer from {self.base_url} within {self._timeout:.0f}s") from exc
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise LoginError("the server returned no join token")
        return token

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


async def fetch_join_token(base_url: str, username: str, password: str, meeting_id: int, *, verify_tls: bool = True) -> str:
    """Log in as ``username`` and return one join token for ``meeting_id``."""
    source = LoginTokenSource(base_url, username, password, meeting_id, verify_tls=verify_tls)
    try:
        return await source.token()
    finally:
        await source.close()
