"""Accounts administration for the secretariat."""

from __future__ import annotations

from aiohttp import web

from meetings.errors import MeetingsError
from meetings.models import Role
from meetings.policy import Action, require
from web.forms import caller, int_param, read_form, services
from web.middleware import see_other
from web.render import render

routes = web.RouteTableDef()


def _roles(form: dict[str, object]) -> list[str]:
    value = form.get("roles", [])
    return [value] if isinstance(value, str) and value else list(value) if isinstance(value, list) else []


async def _form(request: web.Request, *, person: object, values: dict[str, object],
                error: MeetingsError | None, status: int = 200) -> web.Response:
    offices = await services(request).offices.list(caller(request))
    return render(request, "people/form.html", {"person": person, "values": values, "error": error,
                                                "offices": offices, "all_roles": list(Role)}, status=status)


@routes.get("/people", name="people")
async def people_list(request: web.Request) -> web.StreamResponse:
    people = await services(request).people.list(caller(request))
    return render(request, "people/list.html", {"people": people})


@routes.get("/people/new")
async def person_new(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_PEOPLE)
    return await _form(request, person=None, values={"roles": []}, error=None)


@routes.post("/people/new")
async def person_create(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_PEOPLE)
    form = await read_form(request)
    form["roles"] = _roles(form)
    try:
        await services(request).people.create(caller(request), username=form.get("username"),
                                              full_name=form.get("full_name"), office_id=form.get("office_id"),
                                              roles=form["roles"], password=form.get("password"))
    except MeetingsError as exc:
        if exc.code not in ("invalid", "conflict"):
            raise
        form.pop("password", None)
        return await _form(request, person=None, values=form, error=exc, status=400)
    return see_other("/people")


@routes.get("/people/{id}/edit")
async def person_edit(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_PEOPLE)
    person = await services(request).people.get(caller(request), int_param(request, "id"))
    values = {"full_name": person.full_name, "office_id": str(person.office_id),
              "roles": [r.value for r in person.roles], "active": person.active}
    return await _form(request, person=person, values=values, error=None)


@routes.post("/people/{id}/edit")
async def person_update(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_PEOPLE)
    person_id = int_param(request, "id")
    person = await services(request).people.get(caller(request), person_id)
    form = await read_form(request)
    form["roles"] = _roles(form)
    try:
        await services(request).people.update(caller(request), person_id, full_name=form.get("full_name"),
                                              office_id=form.get("office_id"), roles=form["roles"],
                                              active=form.get("active") == "on")
        if form.get("password"):
            await services(request).people.set_password(caller(request), person_id, form.get("password"))
    except MeetingsError as exc:
        if exc.code not in ("invalid", "conflict"):
            raise
        form.pop("password", None)
        return await _form(request, person=person, values=form, error=exc, status=400)
    return see_other("/people")
