"""Before the session: series and occurrences, notices, calendars, agenda documents and positions.

Pages (forms, CSRF field) and their JSON equivalents under /api. Every check is in the services.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from aiohttp import web

from meetings.errors import MeetingsError, ValidationFailed
from meetings.models import Meeting, MeetingSeries, Notice
from meetings.policy import Action, decide
from meetings.services.common import clean_int
from meetings.services.positions import ItemTally
from web.forms import caller, int_param, principal, read_form, services
from web.middleware import see_other
from web.render import LOCAL_TZ, render

routes = web.RouteTableDef()


def _(message: str) -> str:
    """Marks a string for extraction; the template translates it when it renders."""
    return message


WEEKDAYS = [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday")]


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _local(value: object, field: str) -> str:
    """A datetime-local form field, read as Phnom Penh time, as ISO 8601 with offset."""
    try:
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=LOCAL_TZ).isoformat()
    except ValueError:
        raise ValidationFailed(f"{field} must be a date and time", field=field) from None


def _list(value: object) -> list[str]:
    return [value] if isinstance(value, str) and value else value if isinstance(value, list) else []


# -- serialisation --------------------------------------------------------------------------------
def series_json(s: MeetingSeries) -> dict[str, Any]:
    return {"id": s.id, "title": s.title, "kind": s.kind.value, "host_office_id": s.host_office_id,
            "weekday": s.weekday, "local_time": s.local_time.strftime("%H:%M"),
            "duration_minutes": s.duration_minutes, "timezone": s.timezone, "starts_on": s.starts_on.isoformat(),
            "until": s.until.isoformat() if s.until else None, "active": s.active,
            "invited_office_ids": sorted(i.office_id for i in s.invitations if i.office_id is not None),
            "invited_person_ids": sorted(i.person_id for i in s.invitations if i.person_id is not None)}


def occurrence_json(m: Meeting) -> dict[str, Any]:
    return {"id": m.id, "title": m.title, "state": m.state.value, "starts_at": m.starts_at.isoformat(),
            "ends_at": m.ends_at.isoformat(), "sequence": m.sequence, "series_id": m.series_id,
            "occurrence_date": m.occurrence_date.isoformat() if m.occurrence_date else None}


def notice_json(n: Notice) -> dict[str, Any]:
    return {"id": n.id, "meeting_id": n.meeting_id, "kind": n.kind, "text": n.text,
            "created_at": n.created_at.isoformat(), "read": n.read_at is not None}


def tally_json(t: ItemTally) -> dict[str, Any]:
    return {"item_id": t.item.id, "title": t.item.title, "counts": t.counts, "unopposed": t.unopposed,
            "decided": t.decided,
            "offices": {s.value: [o.code for o in offices] for s, offices in t.offices.items()},
            "no_answer": [o.code for o in t.missing],
            "comments": [{"office": o.code, "stance": s.value, "comment": c} for o, s, c in t.comments]}


# -- series pages -----------------------------------------------------------------------------------
async def _series_page(request: web.Request, values: dict[str, Any], error: MeetingsError | None,
                       status: int = 200) -> web.Response:
    me = principal(request)
    svc = services(request)
    if not (decide(me, Action.CREATE_CABINET_SESSION) or decide(me, Action.CREATE_BRIEFING)):
        from meetings.errors import PermissionDenied

        raise PermissionDenied("you may not schedule series")
    series = await svc.schedule.list_series(caller(request))
    offices = await svc.offices.list(caller(request))
    hosts = [o for o in offices if (decide(me, Action.CREATE_CABINET_SESSION) and o.kind.value == "secretariat")
             or o.id == me.office_id]
    kinds = [k for k, a in (("cabinet_session", Action.CREATE_CABINET_SESSION),
                            ("briefing", Action.CREATE_BRIEFING)) if decide(me, a)]
    return render(request, "series/list.html", {"series": series, "offices": offices, "hosts": hosts,
                                                "kinds": kinds, "values": values, "error": error,
                                                "weekdays": WEEKDAYS}, status=status)


@routes.get("/series", name="series")
async def series_list(request: web.Request) -> web.StreamResponse:
    return await _series_page(request, {"weekday": "4", "local_time": "08:00", "duration_minutes": "180"}, None)


@routes.post("/series")
async def series_create_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    form = await read_form(request)
    try:
        series = await services(request).schedule.create_series(
            caller(request), title=form.get("title"), kind=form.get("kind"), host_office_id=form.get("host_office_id"),
            weekday=form.get("weekday"), local_time=form.get("local_time"),
            duration_minutes=form.get("duration_minutes"), starts_on=form.get("starts_on"),
            until=form.get("until") or None, invited_office_ids=_list(form.get("invited_office_ids")))
    except ValidationFailed as exc:
        return await _series_page(request, form, exc, status=400)
    return see_other(f"/series/{series.id}")


@routes.get("/series/{id}")
async def series_page(request: web.Request) -> web.StreamResponse:
    me = principal(request)
    svc = services(request)
    series = await svc.schedule.get_series(caller(request), int_param(request, "id"))
    from meetings.services.schedule import series_access

    occurrences = await svc.schedule.occurrences(caller(request), series.id)
    return render(request, "series/detail.html", {
        "series": series, "occurrences": occurrences, "weekdays": WEEKDAYS,
        "can_manage": decide(me, Action.MANAGE_MEETING, series_access(series)).allowed})


@routes.post("/series/{id}/generate")
async def series_generate_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    await services(request).schedule.generate(caller(request), int_param(request, "id"))
    return see_other(f"/series/{int_param(request, 'id')}")


@routes.post("/series/{id}/end")
async def series_end_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    form = await read_form(request)
    await services(request).schedule.end_series(caller(request), int_param(request, "id"),
                                                last_date=form.get("last_date") or None)
    return see_other(f"/series/{int_param(request, 'id')}")


def _back(meeting: Meeting) -> str:
    return f"/series/{meeting.series_id}" if meeting.series_id else f"/meetings/{meeting.id}"


@routes.post("/meetings/{id}/move")
async def move_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    form = await read_form(request)
    meeting = await services(request).schedule.move(
        caller(request), int_param(request, "id"), starts_at=_local(form.get("starts_at"), "starts_at"),
        ends_at=_local(form.get("ends_at"), "ends_at"))
    return see_other(_back(meeting))


@routes.post("/meetings/{id}/cancel")
async def cancel_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    form = await read_form(request)
    meeting = await services(request).schedule.cancel(caller(request), int_param(request, "id"),
                                                      reason=form.get("reason", ""))
    return see_other(_back(meeting))


# -- notices and calendar (pages) ---------------------------------------------------------------------
@routes.post("/notices/read")
async def notices_read_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    form = await read_form(request)
    notice_id = form.get("notice_id")
    notice = clean_int(notice_id, "notice_id") if notice_id else None
    await services(request).notices.mark_read(caller(request), notice)
    return see_other("/")


@routes.post("/calendar-feed")
async def calendar_feed_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    token = await services(request).calendar.rotate(caller(request))
    # Shown once, on this response only (never stored, never logged, never in a redirect URL).
    return render(request, "calendar_feed.html", {"feed_url": f"{base_url(request)}/calendar/{token}.ics"})


@routes.post("/calendar-feed/revoke")
async def calendar_feed_revoke_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    await services(request).calendar.revoke(caller(request))
    return see_other("/")


@routes.get("/calendar/{token}.ics")
async def calendar_feed(request: web.Request) -> web.StreamResponse:
    """The secret feed address: calendar apps fetch it without logging in."""
    body = await services(request).calendar.feed(request.match_info["token"], base_url=base_url(request),
                                                 address=caller(request).address)
    return web.Response(body=body, content_type="text/calendar", charset="utf-8",
                        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"})


async def _ics(request: web.Request) -> web.StreamResponse:
    principal(request)
    meeting_id = int_param(request, "id")
    _title, body = await services(request).calendar.meeting_ics(caller(request), meeting_id,
                                                                base_url=base_url(request))
    return web.Response(body=body, content_type="text/calendar", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="meeting-{meeting_id}.ics"'})


routes.get("/meetings/{id}/calendar.ics")(_ics)
routes.get("/api/meetings/{id}/calendar.ics")(_ics)


# -- documents ------------------------------------------------------------------------------------------
async def _download(request: web.Request) -> web.StreamResponse:
    principal(request)
    document, path = await services(request).documents.get(caller(request), int_param(request, "id"))
    disposition = f"attachment; filename=\"document-{document.id}.pdf\"; filename*=UTF-8''{quote(document.filename)}"
    return web.FileResponse(path, headers={"Content-Type": "application/pdf", "Content-Disposition": disposition,
                                           "X-Content-SHA256": document.sha256,
                                           "X-Content-Type-Options": "nosniff"})


routes.get("/documents/{id}")(_download)
routes.get("/api/documents/{id}")(_download)


@routes.post("/agenda-items/{id}/documents")
async def upload_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    form = await request.post()  # parsed already by the CSRF check (at most web.max_body_bytes)
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise ValidationFailed("choose a PDF file", field="file")
    svc = services(request)
    document = await svc.documents.upload(caller(request), int_param(request, "id"), filename=upload.filename,
                                          content_type=upload.content_type, body=upload.file.read())
    async with svc.db.read() as session:
        from meetings.models import AgendaItem

        item = await session.get(AgendaItem, document.item_id)
    return see_other(f"/meetings/{item.meeting_id if item else ''}#documents")


@routes.post("/documents/{id}/delete")
async def delete_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    form = await read_form(request)
    await services(request).documents.delete(caller(request), int_param(request, "id"))
    return see_other(f"/meetings/{int(form.get('meeting_id') or 0) or ''}#documents")


# -- positions (pages) -----------------------------------------------------------------------------------
@routes.post("/meetings/{id}/positions")
async def positions_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    meeting_id = int_param(request, "id")
    form = await read_form(request)
    svc = services(request)
    for key, stance in form.items():
        if key.startswith("stance-") and stance:
            item_id = int(key.removeprefix("stance-")) if key.removeprefix("stance-").isdigit() else 0
            await svc.positions.submit(caller(request), meeting_id, item_id, stance=stance,
                                       comment=form.get(f"comment-{item_id}", ""))
    return see_other(f"/meetings/{meeting_id}#positions")


@routes.post("/meetings/{id}/positions-deadline")
async def deadline_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    form = await read_form(request)
    value = form.get("positions_deadline")
    await services(request).positions.set_deadline(caller(request), int_param(request, "id"),
                                                   _local(value, "positions_deadline") if value else None)
    return see_other(f"/meetings/{int_param(request, 'id')}#positions")


@routes.post("/meetings/{id}/adopt-en-bloc")
async def adopt_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    await services(request).positions.adopt_en_bloc(caller(request), int_param(request, "id"))
    return see_other(f"/meetings/{int_param(request, 'id')}#tally")
