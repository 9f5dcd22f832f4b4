"""The JSON API under /api. Errors are always ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from sqlalchemy import text

from meetings.services.common import clean_int
from web import serialize
from web.forms import caller, int_param, principal, read_json, services

routes = web.RouteTableDef()


@routes.get("/api/health")
async def health(request: web.Request) -> web.StreamResponse:
    """Liveness, database reachability and storage; reveals nothing about meetings or people.

    ``{"status": "ok"}`` with 200, or ``{"status": "degraded", "problems": [{code, message, since}]}`` with
    503 when the database cannot be reached or cannot take writes: the disk is full (``disk_full``), the
    database is read-only (``read_only``) or was locked by another program in the last minute (``busy``).
    503 so that a monitor that only looks at the status code raises the alarm; the live session goes on.
    """
    storage = services(request).storage
    problems = []
    try:
        async with services(request).db.read() as session:
            await session.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # noqa: BLE001 - reported, not raised
        database = "unavailable"
        problems.append({"code": "database_unavailable", "message": "the database cannot be reached"})
    storage.probe()
    problems.extend(p.public() for p in storage.problems())
    status = 503 if problems else 200
    return web.json_response({"status": "degraded" if problems else "ok", "database": database,
                              "problems": problems, "time": dt.datetime.now(dt.UTC).isoformat()}, status=status)


@routes.get("/api/me")
async def me(request: web.Request) -> web.StreamResponse:
    return web.json_response({"me": serialize.me(principal(request))})


@routes.get("/api/offices")
async def offices(request: web.Request) -> web.StreamResponse:
    principal(request)
    items = await services(request).offices.list(caller(request))
    return web.json_response({"offices": [serialize.office(o) for o in items]})


@routes.post("/api/offices")
async def office_create(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    office = await services(request).offices.create(caller(request), code=data.get("code"), kind=data.get("kind"),
                                                    name_en=data.get("name_en"), name_km=data.get("name_km"))
    return web.json_response({"office": serialize.office(office)}, status=201)


@routes.patch("/api/offices/{id}")
async def office_update(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    office = await services(request).offices.update(
        caller(request), int_param(request, "id"), name_en=data.get("name_en"), name_km=data.get("name_km"),
        kind=data.get("kind"), active=data.get("active"))
    return web.json_response({"office": serialize.office(office)})


@routes.get("/api/people")
async def people(request: web.Request) -> web.StreamResponse:
    principal(request)
    items = await services(request).people.list(caller(request))
    return web.json_response({"people": [serialize.person(p) for p in items]})


@routes.get("/api/people/{id}")
async def person(request: web.Request) -> web.StreamResponse:
    principal(request)
    item = await services(request).people.get(caller(request), int_param(request, "id"))
    return web.json_response({"person": serialize.person(item)})


@routes.post("/api/people")
async def person_create(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    item = await services(request).people.create(
        caller(request), username=data.get("username"), full_name=data.get("full_name"),
        office_id=data.get("office_id"), roles=data.get("roles"), password=data.get("password"))
    return web.json_response({"person": serialize.person(item)}, status=201)


@routes.patch("/api/people/{id}")
async def person_update(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    item = await services(request).people.update(
        caller(request), int_param(request, "id"), full_name=data.get("full_name"), office_id=data.get("office_id"),
        roles=data.get("roles"), active=data.get("active"))
    return web.json_response({"person": serialize.person(item)})


@routes.put("/api/people/{id}/password")
async def person_password(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    await services(request).people.set_password(caller(request), int_param(request, "id"), data.get("password"))
    return web.json_response({"ok": True})


@routes.get("/api/meetings")
async def meetings(request: web.Request) -> web.StreamResponse:
    principal(request)
    items = await services(request).meetings.list_visible(caller(request))
    return web.json_response({"meetings": [serialize.meeting(m) for m in items]})


@routes.post("/api/meetings")
async def meeting_create(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    item = await services(request).meetings.create(
        caller(request), title=data.get("title"), kind=data.get("kind"), host_office_id=data.get("host_office_id"),
        starts_at=data.get("starts_at"), ends_at=data.get("ends_at"),
        invited_office_ids=data.get("invited_office_ids"), invited_person_ids=data.get("invited_person_ids"))
    return web.json_response({"meeting": serialize.meeting(item)}, status=201)


@routes.get("/api/meetings/{id}")
async def meeting(request: web.Request) -> web.StreamResponse:
    principal(request)
    item = await services(request).meetings.get(caller(request), int_param(request, "id"))
    return web.json_response({"meeting": serialize.meeting(item)})


@routes.post("/api/meetings/{id}/invitations")
async def meeting_invite(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    item = await services(request).meetings.invite(caller(request), int_param(request, "id"),
                                                   office_ids=data.get("office_ids"),
                                                   person_ids=data.get("person_ids"))
    return web.json_response({"meeting": serialize.meeting(item)})


@routes.post("/api/meetings/{id}/join-token")
async def join_token(request: web.Request) -> web.StreamResponse:
    principal(request)
    token, claims = await services(request).meetings.mint_join_token(caller(request), int_param(request, "id"))
    return web.json_response({"token": token, "expires_at": claims.expires_at, "meeting_id": claims.meeting_id})


@routes.get("/api/audit")
async def audit(request: web.Request) -> web.StreamResponse:
    principal(request)
    before = clean_int(request.query["before"], "before") if "before" in request.query else None
    limit = clean_int(request.query.get("limit", "100"), "limit", 1, 500)
    events = await services(request).audit.recent(caller(request), limit=limit, before_seq=before,
                                                  action_prefix=request.query.get("action", "")[:64])
    return web.json_response({"events": [serialize.audit_event(e) for e in events]})


@routes.get("/api/audit/verify")
async def audit_verify(request: web.Request) -> web.StreamResponse:
    principal(request)
    result = await services(request).audit.verify(caller(request))
    return web.json_response({"ok": result.ok, "checked": result.checked, "head_seq": result.head_seq,
                              "broken_seq": result.broken_seq, "problem": result.problem})
