"""Obtain a join token by logging in over Cabinet's JSON API (as an operator would in a browser).

``GET /api/session`` (pre-session cookie + CSRF token), ``POST /api/session`` with the
credentials (new CSRF token bound to the session), ``POST /api/meetings/{id}/join-token``.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from .errors import LoginError


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except (aiohttp.ContentTypeError, ValueError):
        body = None
    if response.status >= 400 or not isinstance(body, dict):
        detail = ""
        if isinstance(body, dict):
            error = body.get("error")
            detail = error.get("message", "") if isinstance(error, dict) else str(error or "")
        raise LoginError(f"{response.method} {response.url.path} failed with HTTP {response.status} {detail}".strip())
    return body


async def fetch_join_token(base_url: str, username: str, password: str, meeting_id: int, *, verify_tls: bool = True) -> str:
    """Log in as ``username`` and return a join token for ``meeting_id``."""
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for IP hosts such as 127.0.0.1
    connector = aiohttp.TCPConnector(ssl=None if verify_tls else False)
    timeout = aiohttp.ClientTimeout(total=20)
    try:
        async with aiohttp.ClientSession(base_url, cookie_jar=jar, connector=connector, timeout=timeout) as http:
            async with http.get("/api/session") as response:
                csrf = (await _json(response)).get("csrf_token")
            if not csrf:
                raise LoginError("GET /api/session gave no csrf_token")
            async with http.post(
                "/api/session", json={"username": username, "password": password}, headers={"X-CSRF-Token": csrf}
            ) as response:
                csrf = (await _json(response)).get("csrf_token")
            if not csrf:
                raise LoginError("login gave no csrf_token")
            async with http.post(f"/api/meetings/{int(meeting_id)}/join-token", headers={"X-CSRF-Token": csrf}) as response:
                token = (await _json(response)).get("token")
    except aiohttp.ClientError as exc:
        raise LoginError(f"cannot reach {base_url}: {exc}") from exc
    if not isinstance(token, str) or not token:
        raise LoginError("the server returned no join token")
    return token
