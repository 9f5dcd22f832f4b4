"""Meeting pages: the list of what the caller may see, creation, and a meeting's page."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from meetings.errors import MeetingsError, ValidationFailed
from meetings.models import MeetingKind, OfficeKind, Role
from meetings.models.decisions import Outcome
from meetings.policy import Action, decide
from meetings.services.common import meeting_access
from web.forms import caller, int_param, principal, read_form, services
from web.middleware import see_other
from web.render import LOCAL_TZ, render

routes = web.RouteTableDef()


@routes.get("/meetings", name="meetings")
async def meeting_list(request: web.Request) -> web.StreamResponse:
    me = principal(request)
    meetings = await services(request).meetings.list_visible(caller(request))
    can_create = decide(me, Action.CREATE_CABINET_SESSION).allowed or decide(me, Action.CREATE_BRIEFING).allowed
    return render(request, "meetings/list.html", {"meetings": meetings, "can_create": can_create})


def _allowed_kinds(request: web.Request) -> list[MeetingKind]:
    me = principal(request)
    kinds = []
    if decide(me, Action.CREATE_CABINET_SESSION):
        kinds.append(MeetingKind.CABINET_SESSION)
    if decide(me, Action.CREATE_BRIEFING):
        kinds.append(MeetingKind.BRIEFING)
    return kinds


async def _form(request: web.Request, values: dict[str, object], error: MeetingsError | None,
                status: int = 200) -> web.Response:
    me = principal(request)
    kinds = _allowed_kinds(request)
    offices = await services(request).offices.list(caller(request))
    hosts = [o for o in offices if me.has(Role.SECRETARIAT) and o.kind is OfficeKind.SECRETARIAT
             or o.id == me.office_id]
    return render(request, "meetings/form.html", {"values": values, "error": error, "kinds": kinds,
                                                  "offices": offices, "hosts": hosts}, status=status)


@routes.get("/meetings/new")
async def meeting_new(request: web.Request) -> web.StreamResponse:
    if not _allowed_kinds(request):
        from meetings.errors import PermissionDenied

        raise PermissionDenied("you may not create meetings")
    return await _form(request, {"invited_office_ids": []}, None)


def _local(value: object, field: str) -> dt.datetime:
    """A datetime-local field, in Phnom Penh time."""
    try:
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=LOCAL_TZ)
    except ValueError:
        raise ValidationFailed(f"{field} must be a date and time", field=field) from None


@routes.post("/meetings/new")
async def meeting_create(request: web.Request) -> web.StreamResponse:
    if not _allowed_kinds(request):
        from meetings.errors import PermissionDenied

        raise PermissionDenied("you may not create meetings")
    form = await read_form(request)
    invited = form.get("invited_office_ids", [])
    form["invited_office_ids"] = [invited] if isinstance(invited, str) and invited else (
        invited if isinstance(invited, list) else [])
    try:
        meeting = await services(request).meetings.create(
            caller(request), title=form.get("title"), kind=form.get("kind"), host_office_id=form.get("host_office_id"),
            starts_at=_local(form.get("starts_at"), "starts_at"), ends_at=_local(form.get("ends_at"), "ends_at"),
            invited_office_ids=form["invited_office_ids"])
    except MeetingsError as exc:
        if exc.code != "invalid":
            raise
        return await _form(request, form, exc, status=400)
    return see_other(f"/meetings/{meeting.id}")


@routes.get("/meetings/{id}", name="meeting")
async def meeting_page(request: web.Request) -> web.StreamResponse:
    me = principal(request)
    meeting = await services(request).meetings.get(caller(request), int_param(request, "id"))
    access = meeting_access(meeting)
    svc = services(request)
    can_position = decide(me, Action.SUBMIT_POSITION, access).allowed
    can_tally = decide(me, Action.VIEW_POSITIONS, access).allowed
    from meetings.services.positions import deadline_of

    return render(request, "meetings/detail.html", {
        "meeting": meeting,
        "documents": await svc.documents.list(caller(request), meeting.id),
        "can_position": can_position,
        "my_positions": await svc.positions.mine(caller(request), meeting.id) if can_position else {},
        "positions_open": dt.datetime.now(dt.UTC) < deadline_of(meeting),
        "positions_deadline": deadline_of(meeting),
        "tally": await svc.positions.tally(caller(request), meeting.id) if can_tally else None,
        "can_adopt": decide(me, Action.ADOPT_EN_BLOC, access).allowed,
        "can_manage": decide(me, Action.MANAGE_MEETING, access).allowed,
        "can_join": decide(me, Action.JOIN_MEETING, access).allowed,
        "can_moderate": decide(me, Action.MODERATE_MEETING, access).allowed,
        # The record: decisions per item (entered here by the chair or the secretariat), minutes link.
        "decisions": {d.item_id: d for d in await services(request).decisions.list(caller(request), meeting.id)},
        "can_decide": decide(me, Action.RECORD_DECISION, access).allowed,
        "can_register": await svc.minutes.may_view_register(caller(request), meeting),
        "outcomes": list(Outcome),
    })
