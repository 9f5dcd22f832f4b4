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
from web.i18n import LOCALES, Catalogs
from web.middleware import csrf, errors, headers, loggable_path, request_context, upload_limit
from web.render import create_environment
from web.security import Security
from web.views import (api, api_schedule, archive, auth, console, meetings, node_pages, node_uploads, nodes, offices,
                       pages, people, record, register, room, schedule)

STATIC_DIR = Path(__file__).parent / "static"
#: Browser libraries come from the npm registry (package.json, package-lock.json) into node_modules.
VENDOR_FILES = {
    "socket.io.esm.min.js": Path(__file__).parent.parent / "node_modules/socket.io-client/dist/socket.io.esm.min.js",
}
log = logging.getLogger("web")


async def vendor(request: web.Request) -> web.StreamResponse:
    path = VENDOR_FILES.get(request.match_info["name"])
    if path is None or not path.exists():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


async def script_catalog(request: web.Request) -> web.StreamResponse:
    """The translations the page scripts need, for one language."""
    lang = request.match_info["lang"]
    if lang not in LOCALES:
        raise web.HTTPNotFound()
    return web.json_response(request.app[keys.CATALOGS].get(lang).script_messages,
                             headers={"Cache-Control": "public, max-age=3600"})


class AccessLogger(AbstractAccessLogger):
    """One structured line per request: no query strings, no cookies, no headers, no secret segments."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:  # noqa: A002
        path = loggable_path(request)
        self.logger.info(
            "%s %s %s", request.method, path, response.status,
            extra={"event": "http.request", "method": request.method, "path": path,
                   "status": response.status, "duration_ms": round(time * 1000, 1), "remote": request.remote,
                   "request_id": request.get(keys.REQUEST_ID)},
        )


def create_app(services: Services, config: WebConfig, secret_key: str, *, tls: bool,
               archive_root: Path | None = None,
               node_upload_max_bytes: int = 8192 * 2**20) -> web.Application:
    app = web.Application(
        middlewares=[headers, errors, request_context, upload_limit, csrf],
        client_max_size=config.max_body_bytes,
    )
    app[keys.SERVICES] = services
    app[keys.CONFIG] = config
    app[keys.SECURITY] = Security(config, secret_key, tls=tls)
    app[keys.TEMPLATES] = create_environment()
    app[keys.EXTRAS] = {"started_at": time.time()}
    app[keys.CATALOGS] = Catalogs()
    archive.setup(app, archive_root)
    nodes.install(app)
    node_uploads.setup(app, node_upload_max_bytes)
    missing = [name for name, path in VENDOR_FILES.items() if not path.exists()]
    if missing:
        log.warning("browser libraries missing (run scripts/setup.sh, which runs npm ci): %s", ", ".join(missing),
                    extra={"event": "web.vendor_missing"})
    app.router.add_get("/vendor/{name}", vendor)
    app.router.add_get("/i18n/{lang}.json", script_catalog)
    for module in (auth, pages, offices, people, schedule, meetings, room, console, record, register, api,
                   api_schedule, archive, nodes, node_pages, node_uploads):
        app.router.add_routes(module.routes)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    return app

