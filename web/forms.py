"""Small helpers for reading forms and JSON bodies, and for the caller of a request."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from meetings.errors import NotAuthenticated, ValidationFailed
from meetings.policy import Caller, Principal
from web import keys


def caller(request: web.Request) -> Caller:
    return request[keys.CALLER]  # type: ignore[no-any-return]


def principal(request: web.Request) -> Principal:
    """The logged-in principal, or NotAuthenticated (401 / redirect to the login page)."""
    current = caller(request).principal
    if current is None:
        raise NotAuthenticated("log in first")
    return current


def services(request: web.Request):  # type: ignore[no-untyped-def]
    return request.app[keys.SERVICES]


def int_param(request: web.Request, name: str) -> int:
    try:
        value = int(request.match_info[name])
    except (KeyError, ValueError):
        raise web.HTTPNotFound() from None
    if value < 1 or value > 2**31:
        raise web.HTTPNotFound()
    return value


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ValidationFailed("the body must be JSON (Content-Type: application/json)")
    try:
        data = json.loads(await request.text())
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep, a number of 5000 digits
        raise ValidationFailed("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object")
    return data


async def read_form(request: web.Request) -> dict[str, Any]:
    form = await request.post()
    out: dict[str, Any] = {}
    for key in set(form.keys()):
        values = [v for v in form.getall(key) if isinstance(v, str)]
        out[key] = values if len(values) > 1 or key.endswith("[]") else (values[0] if values else "")
    return out


def safe_next(value: str | None) -> str:
    """Only a path on this site is allowed as a post-login destination (no open redirect).

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so ``/\t/host``,
    ``/\n/host`` and ``/\\host`` would become ``//host`` (another site): any control character, space
    or backslash refuses the value. What is left starts with one slash, so it has no scheme or host.
    """
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ch <= " " or ch == "\x7f" for ch in value):
        return "/"
    return value
