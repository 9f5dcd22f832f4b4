"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import jinja2

    from meetings.policy import Caller
    from meetings.services import Services
    from web.config import WebConfig
    from web.i18n import Catalogs
    from web.security import Security

SERVICES: web.AppKey[Services] = web.AppKey("services")
CONFIG: web.AppKey[WebConfig] = web.AppKey("web_config")
SECURITY: web.AppKey[Security] = web.AppKey("security")
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates")
CATALOGS: web.AppKey[Catalogs] = web.AppKey("catalogs")
#: Extra per-app values that other layers put on the app (e.g. signaling's readiness).
EXTRAS: web.AppKey[dict[str, object]] = web.AppKey("extras")
#: The recording archive's folder (one sub-folder per recording key); None: no archive configured.
ARCHIVE_ROOT: web.AppKey[Path | None] = web.AppKey("archive_root")
#: The archive's background jobs (MP4 exports) and audit throttle (web/views/archive.py).
ARCHIVE_JOBS: web.AppKey[Any] = web.AppKey("archive_jobs")

# Request-scoped (request[...]) keys.
CALLER: web.RequestKey[Caller] = web.RequestKey("caller")
SESSION_TOKEN: web.RequestKey[str | None] = web.RequestKey("session_token")
PRE_SESSION: web.RequestKey[str | None] = web.RequestKey("pre_session")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
LOCALE: web.RequestKey[str] = web.RequestKey("locale")
