"""The attendance register of a session (JSON): per site and per person, intervals, late, early, excused.

Also the attendance rules (quorum share, reconnect grace) and excused absences, for the secretariat.
"""

from __future__ import annotations

from aiohttp import web

from web.forms import caller, int_param, principal, read_json, services

routes = web.RouteTableDef()


@routes.get("/api/meetings/{id}/register")
async def register(request: web.Request) -> web.StreamResponse:
    principal(request)
    document = await services(request).attendance.register(caller(request), int_param(request, "id"))
    return web.json_response({"register": document})


@routes.post("/api/meetings/{id}/excused")
async def excuse(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    row = await services(request).attendance.excuse(caller(request), int_param(request, "id"),
                                                    office_id=data.get("office_id"), person_id=data.get("person_id"),
                                                    reason=data.get("reason"))
    return web.json_response({"excuse_id": row.id}, status=201)


@routes.patch("/api/meetings/{id}/attendance-rules")
async def rules(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    await services(request).session.set_rules(caller(request), int_param(request, "id"),
                                              quorum_percent=data.get("quorum_percent"),
                                              grace_seconds=data.get("grace_seconds"))
    return web.json_response({"ok": True})
