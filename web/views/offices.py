"""The office directory, and its administration by the secretariat."""

from __future__ import annotations

from aiohttp import web

from meetings.errors import MeetingsError
from meetings.models import OfficeKind
from meetings.policy import Action, decide, require
from web.forms import caller, int_param, principal, read_form, services
from web.middleware import see_other
from web.render import render

routes = web.RouteTableDef()


@routes.get("/offices", name="offices")
async def office_list(request: web.Request) -> web.StreamResponse:
    me = principal(request)
    offices = await services(request).offices.list(caller(request), include_inactive=decide(
        me, Action.MANAGE_OFFICES).allowed)
    return render(request, "offices/list.html", {"offices": offices,
                                                 "can_manage": decide(me, Action.MANAGE_OFFICES).allowed})


def _form(request: web.Request, *, office: object, values: dict[str, object], error: MeetingsError | None,
          status: int = 200) -> web.Response:
    return render(request, "offices/form.html", {"office": office, "values": values, "error": error,
                                                 "kinds": list(OfficeKind)}, status=status)


@routes.get("/offices/new")
async def office_new(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_OFFICES)
    return _form(request, office=None, values={}, error=None)


@routes.post("/offices/new")
async def office_create(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_OFFICES)
    form = await read_form(request)
    try:
        await services(request).offices.create(caller(request), code=form.get("code"), kind=form.get("kind"),
                                               name_en=form.get("name_en"), name_km=form.get("name_km"))
    except MeetingsError as exc:
        if exc.code not in ("invalid", "conflict"):
            raise
        return _form(request, office=None, values=form, error=exc, status=400)
    return see_other("/offices")


@routes.get("/offices/{id}/edit")
async def office_edit(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_OFFICES)
    office = await services(request).offices.get(caller(request), int_param(request, "id"))
    values = {"name_en": office.name_en, "name_km": office.name_km, "kind": office.kind.value,
              "active": office.active}
    return _form(request, office=office, values=values, error=None)


@routes.post("/offices/{id}/edit")
async def office_update(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_OFFICES)
    office_id = int_param(request, "id")
    office = await services(request).offices.get(caller(request), office_id)
    form = await read_form(request)
    try:
        await services(request).offices.update(caller(request), office_id, name_en=form.get("name_en"),
                                               name_km=form.get("name_km"), kind=form.get("kind"),
                                               active=form.get("active") == "on")
    except MeetingsError as exc:
        if exc.code != "invalid":
            raise
        return _form(request, office=office, values=form, error=exc, status=400)
    return see_other("/offices")
