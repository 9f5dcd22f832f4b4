"""Jinja2 rendering with autoescaping, i18n and the request's CSRF token and caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import markupsafe
from aiohttp import web

from web import keys
from web.i18n import LOCALES, gettext_, ngettext_
from web.security import SCRIPT_GUARD_JS

TEMPLATES_DIR = Path(__file__).parent / "templates"
#: Times are shown in the government's time zone, whatever the viewer's machine says.
LOCAL_TZ = ZoneInfo("Asia/Phnom_Penh")


def create_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(gettext_, ngettext_, newstyle=True)  # type: ignore[attr-defined]
    return env


def csrf_token_for(request: web.Request) -> str:
    security = request.app[keys.SECURITY]
    binding = request.get(keys.SESSION_TOKEN) or request.get(keys.PRE_SESSION)
    return security.csrf_token(binding) if binding else ""


def same_origin_path(path: str) -> str:
    """``path`` as a link that stays on this site: ``//host/x`` or ``/\\host/x`` would be read by a
    browser as another host (a protocol-relative address), so leading slashes collapse to one."""
    return "/" + path.lstrip("/\\")


def render(request: web.Request, template: str, context: dict[str, Any] | None = None, *,
           status: int = 200) -> web.Response:
    env = request.app[keys.TEMPLATES]
    caller = request.get(keys.CALLER)
    principal = caller.principal if caller else None
    data = {
        "request": request,
        "local_tz": LOCAL_TZ,
        "lang": request.get(keys.LOCALE, "en"),
        "locales": LOCALES,
        "me": principal,
        "csrf_token": csrf_token_for(request),
        "path": same_origin_path(request.path),
        "script_guard": markupsafe.Markup(SCRIPT_GUARD_JS),
    }
    data.update(context or {})
    body = env.get_template(template).render(data)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
