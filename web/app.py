"""The aiohttp application for pages and the API."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from meetings.services import Services
from web import keys
from web.config import WebConfig
from web.middleware import csrf, errors, headers, request_context
from web.render import create_environment
from web.security import Security
from web.views import api, auth, meetings, offices, pages, people

STATIC_DIR = Path(__file__).parent / "static"


class AccessLogger(AbstractAccessLogger):
    """One structured line per request: no query strings, no cookies, no headers."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:  # noqa: A002
        self.logger.info(
            "%s %s %s", request.method, request.path, response.status,
            extra={"event": "http.request", "method": request.method, "path": request.path,
                   "status": response.status, "duration_ms": round(time * 1000, 1), "remote": request.remote,
                   "request_id": request.get(keys.REQUEST_ID)},
        )


def create_app(services: Services, config: WebConfig, secret_key: str, *, tls: bool) -> web.Application:
    app = web.Application(
        middlewares=[headers, errors, request_context, csrf],
        client_max_size=config.max_body_bytes,
    )
    app[keys.SERVICES] = services
    app[keys.CONFIG] = config
    app[keys.SECURITY] = Security(config, secret_key, tls=tls)
    app[keys.TEMPLATES] = create_environment()
    app[keys.EXTRAS] = {"started_at": time.time()}
    for module in (auth, pages, offices, people, meetings, api):
        app.router.add_routes(module.routes)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    return app


ACCESS_LOGGER = AccessLogger
access_log = logging.getLogger("web.access")
