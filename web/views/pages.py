"""Home page per role, and the audit trail page."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from meetings.errors import ValidationFailed
from meetings.models import Role
from meetings.policy import Action, decide, require
from meetings.services.common import clean_int
from web.forms import caller, principal, services
from web.render import render

routes = web.RouteTableDef()


@routes.get("/", name="home")
async def home(request: web.Request) -> web.StreamResponse:
    me = principal(request)
    meetings = await services(request).meetings.list_visible(caller(request))
    now = dt.datetime.now(dt.UTC)
    upcoming = sorted((m for m in meetings if m.ends_at >= now), key=lambda m: m.starts_at)
    past = [m for m in meetings if m.ends_at < now][:10]
    can = {action.name.lower(): bool(decide(me, action)) for action in (
        Action.MANAGE_OFFICES, Action.VIEW_PEOPLE, Action.VIEW_AUDIT, Action.CREATE_CABINET_SESSION,
        Action.CREATE_BRIEFING)}
    roles = sorted(r.value for r in me.roles)
    svc = services(request)
    return render(request, "home.html", {"upcoming": upcoming, "past": past, "can": can, "roles": roles,
                                         "is_chair": me.has(Role.CHAIR),
                                         "notices": await svc.notices.list(caller(request), limit=20),
                                         "unread": await svc.notices.unread_count(caller(request)),
                                         "feed": await svc.calendar.current(caller(request))})


@routes.get("/audit", name="audit")
async def audit_page(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.VIEW_AUDIT)
    svc = services(request)
    try:
        before = clean_int(request.query["before"], "before") if "before" in request.query else None
    except ValidationFailed:
        before = None  # a mistyped page link shows the newest events
    prefix = request.query.get("action", "")[:64]
    events = await svc.audit.recent(caller(request), limit=100, before_seq=before, action_prefix=prefix)
    result = await svc.audit.verify(caller(request))
    return render(request, "audit.html", {"events": events, "verify": result, "action": prefix})
