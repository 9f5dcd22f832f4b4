"""Login and logout pages, and the same over the API (``/api/session``)."""

from __future__ import annotations

from aiohttp import web

from meetings.errors import LoginFailed, LoginThrottled
from web import keys, serialize
from web.forms import caller, read_form, read_json, safe_next, services
from web.middleware import see_other
from web.render import render

routes = web.RouteTableDef()


def _prepare_pre_session(request: web.Request) -> None:
    """A logged-out browser gets a pre-session id, so its login form carries a CSRF token bound to it."""
    if not request.get(keys.PRE_SESSION) and not request.get(keys.SESSION_TOKEN):
        request[keys.PRE_SESSION] = request.app[keys.SECURITY].new_pre_session()


def _ensure_pre_session(request: web.Request, response: web.StreamResponse) -> None:
    security = request.app[keys.SECURITY]
    value = request.get(keys.PRE_SESSION)
    if value and request.cookies.get(security.cookies.pre_session) != value:
        security.set_cookie(response, security.cookies.pre_session, value, max_age=3600)


def _start_session(request: web.Request, response: web.StreamResponse, token: str) -> None:
    security = request.app[keys.SECURITY]
    max_age = services(request).auth.config.session_absolute_hours * 3600
    security.set_cookie(response, security.cookies.session, token, max_age=max_age)
    security.clear_cookie(response, security.cookies.pre_session)


async def _end_previous_session(request: web.Request) -> None:
    """Logging in again ends whatever session the browser had: a fresh id every time."""
    old = request.get(keys.SESSION_TOKEN)
    if old:
        await services(request).auth.logout(old, caller(request))


@routes.get("/login", name="login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if caller(request).principal is not None:
        return see_other(safe_next(request.query.get("next")))
    _prepare_pre_session(request)
    response = render(request, "login.html", {"next": safe_next(request.query.get("next")), "error": None,
                                              "username": ""})
    _ensure_pre_session(request, response)
    return response


@routes.post("/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    username = str(form.get("username", ""))
    next_url = safe_next(str(form.get("next", "/")))
    try:
        result = await services(request).auth.login(username, str(form.get("password", "")), caller(request),
                                                    request.headers.get("User-Agent", ""))
    except (LoginFailed, LoginThrottled) as exc:
        status = 429 if isinstance(exc, LoginThrottled) else 401
        response = render(request, "login.html", {"next": next_url, "error": exc.message, "username": username[:64]},
                          status=status)
        if isinstance(exc, LoginThrottled):
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
        _ensure_pre_session(request, response)
        return response
    await _end_previous_session(request)
    response = see_other(next_url)
    _start_session(request, response, result.token)
    return response


@routes.post("/logout", name="logout")
async def logout(request: web.Request) -> web.StreamResponse:
    await services(request).auth.logout(request.get(keys.SESSION_TOKEN), caller(request))
    response = see_other("/login")
    security = request.app[keys.SECURITY]
    security.clear_cookie(response, security.cookies.session)
    return response


@routes.get("/api/session")
async def api_session(request: web.Request) -> web.StreamResponse:
    """Who am I, and a CSRF token for the next write (sets the pre-session cookie when logged out)."""
    current = caller(request).principal
    _prepare_pre_session(request)
    security = request.app[keys.SECURITY]
    binding = request.get(keys.SESSION_TOKEN) or request.get(keys.PRE_SESSION)
    response = web.json_response({"authenticated": current is not None,
                                  "me": serialize.me(current) if current else None,
                                  "csrf_token": security.csrf_token(binding)})
    _ensure_pre_session(request, response)
    return response


@routes.post("/api/session")
async def api_login(request: web.Request) -> web.StreamResponse:
    data = await read_json(request)
    result = await services(request).auth.login(str(data.get("username", "")), str(data.get("password", "")),
                                                 caller(request), request.headers.get("User-Agent", ""))
    await _end_previous_session(request)
    security = request.app[keys.SECURITY]
    response = web.json_response({"me": serialize.me(result.principal),
                                  "csrf_token": security.csrf_token(result.token)})
    _start_session(request, response, result.token)
    return response


@routes.delete("/api/session")
async def api_logout(request: web.Request) -> web.StreamResponse:
    await services(request).auth.logout(request.get(keys.SESSION_TOKEN), caller(request))
    response = web.json_response({"authenticated": False})
    security = request.app[keys.SECURITY]
    security.clear_cookie(response, security.cookies.session)
    return response
