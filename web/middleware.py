"""Request pipeline: request id, caller resolution, CSRF and origin checks, errors, security headers."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable

from urllib.parse import quote

from aiohttp import web
from aiohttp.web_request import BaseRequest

from meetings.errors import (
    Conflict,
    DatabaseBusy,
    DatabaseReadOnly,
    DiskFull,
    LoginFailed,
    LoginThrottled,
    MeetingsError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TokenInvalid,
    ValidationFailed,
)
from meetings.policy import Caller
from web import keys
from web.i18n import LOCALE_COOKIE, LOCALES, activate, negotiate
from web.refusals import note_csrf, note_error
from web.render import render
from web.security import CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, SECURITY_HEADERS

log = logging.getLogger("web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS = {
    ValidationFailed: 400,
    NotAuthenticated: 401,
    LoginFailed: 401,
    TokenInvalid: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    LoginThrottled: 429,
    DatabaseBusy: 503,
    DatabaseReadOnly: 503,
    DiskFull: 507,
}


#: The provincial nodes' recording uploads (web/views/node_uploads.py): for programs, with a bearer credential.
NODE_UPLOADS_PREFIX = "/nodes/uploads/"


def is_api(request: web.Request) -> bool:
    """Routes for programs (JSON errors, no login redirect): the API, the provincial nodes' channel and their
    recording uploads."""
    return (request.path.startswith("/api/") or request.path == "/nodes/control"
            or request.path.startswith(NODE_UPLOADS_PREFIX))


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def error_body(code: str, message: str, field: str | None = None) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return {"error": error}


def json_error(status: int, code: str, message: str, field: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(code, message, field), status=status, headers=headers)


def error_response(request: web.Request, status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> web.StreamResponse:
    if is_api(request):
        return json_error(status, code, message, field, headers)
    if status == 401 and request.method in SAFE_METHODS:
        return see_other(f"/login?next={quote(request.path_qs, safe='/?=&')}")
    response = render(request, "error.html", {"status": status, "code": code, "message": message},
                      status=status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


#: socket.io authenticates with a join token, not the session cookie, and carries no CSRF token.
SIGNALING_PREFIX = "/socket.io/"
#: Form posts that carry an agenda document: allowed up to the document limit, not web.max_body_bytes.
DOCUMENT_UPLOAD = re.compile(r"^/agenda-items/\d+/documents$")
#: Room for the multipart framing and the other form fields around the file.
MULTIPART_OVERHEAD = 256 * 1024

#: Path parameters that are secrets (a calendar feed address is a bearer token): masked in request logs.
SECRET_PATH_PARAMETERS = ("token", "secret", "credential")
#: Routes whose next segment is a secret, for paths that matched no route (a mistyped or revoked address).
SECRET_PATH_PREFIXES = ("/calendar/",)


def loggable_path(request: BaseRequest) -> str:
    """The request's path with secret segments masked. A path that matched no route cannot be told
    apart from a mistyped or revoked secret address, so its segments after a secret route's prefix
    are masked too."""
    path = request.path
    match_info = getattr(request, "match_info", None)
    for name, value in (match_info.items() if match_info is not None else ()):
        if value and any(part in name for part in SECRET_PATH_PARAMETERS):
            path = path.replace(value, "***")
    for prefix in SECRET_PATH_PREFIXES:
        if path.startswith(prefix) and "***" not in path:
            path = prefix + "***"
    return path


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[keys.REQUEST_ID] = secrets.token_hex(6)
    chosen = request.query.get("lang")
    locale = negotiate(chosen, request.cookies.get(LOCALE_COOKIE), request.headers.get("Accept-Language"))
    request[keys.LOCALE] = locale
    activate(request.app[keys.CATALOGS].get(locale))
    if request.path.startswith(SIGNALING_PREFIX):
        request[keys.SESSION_TOKEN] = request[keys.PRE_SESSION] = None
        request[keys.CALLER] = Caller(principal=None, address=request.remote or "")
        return await handler(request)
    security = request.app[keys.SECURITY]
    services = request.app[keys.SERVICES]
    token = request.cookies.get(security.cookies.session)
    principal = await services.auth.resolve(token) if token else None
    request[keys.SESSION_TOKEN] = token if principal else None
    request[keys.PRE_SESSION] = request.cookies.get(security.cookies.pre_session)
    request[keys.CALLER] = Caller(principal=principal, address=security.client_address(request))
    response = await handler(request)
    if chosen in LOCALES and not response.prepared:
        response.set_cookie(LOCALE_COOKIE, chosen, max_age=365 * 86400, path="/", samesite="Lax",
                            secure=security.tls)
    if token and principal is None and not response.prepared and security.cookies.session not in response.cookies:
        security.clear_cookie(response, security.cookies.session)  # stale or ended session
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except LoginThrottled as exc:
        return error_response(request, 429, exc.code, exc.message,
                              headers={"Retry-After": str(exc.retry_after_seconds)})
    except MeetingsError as exc:
        note_error(request, exc)
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        headers = {"Retry-After": "5"} if isinstance(exc, DatabaseBusy) else None
        return error_response(request, status, exc.code, exc.message, exc.field, headers=headers)
    except web.HTTPException as exc:
        if exc.status >= 400 and (is_api(request) or exc.status in (404, 405, 413)):
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
            return error_response(request, exc.status, code, exc.reason)
        raise
    except Exception:
        log.exception("unhandled error", extra={"event": "http.error", "path": loggable_path(request),
                                                 "request_id": request.get(keys.REQUEST_ID)})
        return error_response(request, 500, "internal", "internal error; it has been logged")


@web.middleware
async def upload_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Document uploads from the meeting page may be as large as ``meetings.document_max_bytes``;
    every other request keeps the application's ``web.max_body_bytes``. Only a signed-in caller gets
    the larger limit: an anonymous upload is refused before a byte of its body is read."""
    if request.method == "POST" and DOCUMENT_UPLOAD.match(request.path):
        if request[keys.CALLER].principal is None:
            raise NotAuthenticated("log in first")
        limit = request.app[keys.SERVICES].documents.max_bytes + MULTIPART_OVERHEAD
        request = request.clone(client_max_size=limit)
    return await handler(request)


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS or request.path.startswith(SIGNALING_PREFIX):
        return await handler(request)
    if request.path.startswith(NODE_UPLOADS_PREFIX):
        # A node's own credential in the Authorization header, never a cookie: nothing a browser sends by
        # itself, so nothing to forge across sites (those routes look at no session).
        return await handler(request)
    security = request.app[keys.SECURITY]
    if not security.origin_ok(request):
        note_csrf(request)
        return error_response(request, 403, "csrf", "cross-site request refused")
    binding = request.get(keys.SESSION_TOKEN) or request.get(keys.PRE_SESSION)
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not security.csrf_valid(binding, presented):
        log.info("csrf refused", extra={"event": "csrf.refused", "path": loggable_path(request),
                                        "address": request[keys.CALLER].address})
        note_csrf(request)
        return error_response(request, 403, "csrf", "missing or invalid CSRF token; reload the page and try again")
    return await handler(request)


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = "Cabinet"  # not aiohttp's default, which names its version
    if request.app[keys.SECURITY].tls:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
