"""The record of a meeting on the web: decisions, votes, minutes (draft, edit, approve, verify) and
exports (printable page, PDF, attendance register CSV), as pages and under /api.

Decisions are entered on the meeting page rather than the console: they are often worded after the
discussion, and changed until the minutes are approved, when no live session (and no console
connection) exists; a plain form works then, without JavaScript.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiohttp import web

from meetings.errors import NotFound, ValidationFailed
from meetings.models import Meeting
from meetings.models.decisions import Minutes, MinutesState
from meetings.policy import Action, decide
from meetings.services.common import clean_int, meeting_access
from meetings.services.minutes import body_of
from meetings.services.decisions import decision_payload
from web import exports
from web.forms import caller, int_param, principal, read_form, read_json, services
from web.middleware import see_other
from web.render import LOCAL_TZ, render

routes = web.RouteTableDef()


def hm(value: str | None, with_date: bool = False) -> str:
    """An ISO time of the record, in Phnom Penh time."""
    if not value:
        return ""
    local = dt.datetime.fromisoformat(value).astimezone(LOCAL_TZ)
    return local.strftime("%d/%m/%Y %H:%M" if with_date else "%H:%M")


def _rights(request: web.Request, meeting: Meeting) -> dict[str, bool]:
    me = principal(request)
    access = meeting_access(meeting)
    return {"can_decide": decide(me, Action.RECORD_DECISION, access).allowed,
            "can_edit_minutes": decide(me, Action.EDIT_MINUTES, access).allowed,
            "can_see_draft": decide(me, Action.VIEW_MINUTES_DRAFT, access).allowed}


async def _minutes_or_404(request: web.Request, meeting_id: int) -> Minutes:
    minutes = await services(request).minutes.get(caller(request), meeting_id)
    if minutes is None:
        raise NotFound("there are no minutes of this meeting yet")
    return minutes


# -- decisions ------------------------------------------------------------------------------------
@routes.post("/meetings/{id}/items/{item_id}/decision")
async def decision_form(request: web.Request) -> web.StreamResponse:
    principal(request)
    meeting_id = int_param(request, "id")
    form = await read_form(request)
    await services(request).decisions.record(caller(request), meeting_id, int_param(request, "item_id"),
                                             outcome=form.get("outcome"), text=form.get("text", ""))
    return see_other(f"/meetings/{meeting_id}#decisions")


# -- minutes pages ----------------------------------------------------------------------------------
@routes.get("/meetings/{id}/minutes", name="minutes")
async def minutes_page(request: web.Request) -> web.StreamResponse:
    principal(request)
    meeting = await services(request).meetings.get(caller(request), int_param(request, "id"))
    minutes = await services(request).minutes.get(caller(request), meeting.id)
    verification = None
    if minutes is not None and minutes.state is MinutesState.APPROVED:
        verification = await services(request).minutes.verify(caller(request), meeting.id)
    return render(request, "meetings/minutes.html", {
        "meeting": meeting, "minutes": minutes, "body": body_of(minutes) if minutes else None,
        "verification": verification, "hm": hm, **_rights(request, meeting)})


@routes.post("/meetings/{id}/minutes/draft")
async def minutes_draft(request: web.Request) -> web.StreamResponse:
    principal(request)
    meeting_id = int_param(request, "id")
    await services(request).minutes.draft(caller(request), meeting_id)
    return see_other(f"/meetings/{meeting_id}/minutes")


@routes.post("/meetings/{id}/minutes/edit")
async def minutes_edit(request: web.Request) -> web.StreamResponse:
    principal(request)
    meeting_id = int_param(request, "id")
    form = await read_form(request)
    summaries = {key[len("summary-"):]: value for key, value in form.items() if key.startswith("summary-")}
    await services(request).minutes.edit(caller(request), meeting_id,
                                         version=clean_int(form.get("version"), "version"),
                                         summaries=summaries, note=form.get("note", ""))
    return see_other(f"/meetings/{meeting_id}/minutes")


@routes.post("/meetings/{id}/minutes/approve")
async def minutes_approve(request: web.Request) -> web.StreamResponse:
    principal(request)
    meeting_id = int_param(request, "id")
    form = await read_form(request)
    if form.get("confirm") != "yes":
        raise ValidationFailed("tick the box to confirm that the minutes are final", field="confirm")
    await services(request).minutes.approve(caller(request), meeting_id,
                                            version=clean_int(form.get("version"), "version"))
    return see_other(f"/meetings/{meeting_id}/minutes")


async def _printable(request: web.Request) -> tuple[Meeting, Minutes, str]:
    principal(request)
    meeting = await services(request).meetings.get(caller(request), int_param(request, "id"))
    minutes = await _minutes_or_404(request, meeting.id)
    html = render(request, "meetings/minutes_print.html", {
        "meeting": meeting, "minutes": minutes, "body": body_of(minutes), "hm": hm}).text
    assert html is not None
    return meeting, minutes, html


@routes.get("/meetings/{id}/minutes/print")
async def minutes_print(request: web.Request) -> web.StreamResponse:
    _, _, html = await _printable(request)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


@routes.get("/meetings/{id}/minutes.pdf")
async def minutes_pdf(request: web.Request) -> web.StreamResponse:
    meeting, minutes, html = await _printable(request)
    pdf = await asyncio.to_thread(exports.html_to_pdf, html)
    name = f"minutes-{meeting.id}-{minutes.state.value}-v{minutes.version}.pdf"
    return web.Response(body=pdf, content_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@routes.get("/meetings/{id}/attendance.csv")
async def attendance_csv(request: web.Request) -> web.StreamResponse:
    principal(request)
    from meetings import minutes_draft

    meeting_id = int_param(request, "id")
    record = await services(request).minutes.register(caller(request), meeting_id)
    data = exports.register_csv(minutes_draft.attendance(record))
    return web.Response(body=data, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="attendance-{meeting_id}.csv"',
                                 "Cache-Control": "no-store"})


# -- API --------------------------------------------------------------------------------------------
def minutes_json(minutes: Minutes) -> dict[str, Any]:
    return {"id": minutes.id, "meeting_id": minutes.meeting_id, "state": minutes.state.value,
            "version": minutes.version, "sha256": minutes.sha256 or None,
            "audit_checkpoint": minutes.audit_checkpoint or None,
            "approved_at": minutes.approved_at.isoformat() if minutes.approved_at else None,
            "body": body_of(minutes)}


@routes.get("/api/meetings/{id}/decisions")
async def api_decisions(request: web.Request) -> web.StreamResponse:
    principal(request)
    items = await services(request).decisions.list(caller(request), int_param(request, "id"))
    return web.json_response({"decisions": [decision_payload(d) for d in items]})


@routes.put("/api/meetings/{id}/items/{item_id}/decision")
async def api_decision(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    decision = await services(request).decisions.record(
        caller(request), int_param(request, "id"), int_param(request, "item_id"), outcome=data.get("outcome"),
        text=data.get("text", ""), vote_id=data.get("vote_id"))
    return web.json_response({"decision": decision_payload(decision)})


@routes.get("/api/meetings/{id}/votes")
async def api_votes(request: web.Request) -> web.StreamResponse:
    principal(request)
    meeting_id = int_param(request, "id")
    items = await services(request).votes.list(caller(request), meeting_id)
    meeting = await services(request).meetings.get(caller(request), meeting_id)
    full = decide(principal(request), Action.RUN_VOTE, meeting_access(meeting)).allowed
    return web.json_response({"votes": [await services(request).votes.payload(v, ballots=full) for v in items]})


@routes.get("/api/meetings/{id}/minutes")
async def api_minutes(request: web.Request) -> web.StreamResponse:
    principal(request)
    minutes = await _minutes_or_404(request, int_param(request, "id"))
    return web.json_response({"minutes": minutes_json(minutes)})


@routes.post("/api/meetings/{id}/minutes")
async def api_minutes_draft(request: web.Request) -> web.StreamResponse:
    principal(request)
    minutes = await services(request).minutes.draft(caller(request), int_param(request, "id"))
    return web.json_response({"minutes": minutes_json(minutes)}, status=201 if minutes.version == 1 else 200)


@routes.patch("/api/meetings/{id}/minutes")
async def api_minutes_edit(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    minutes = await services(request).minutes.edit(caller(request), int_param(request, "id"),
                                                   version=data.get("version"), summaries=data.get("summaries"),
                                                   note=data.get("note"))
    return web.json_response({"minutes": minutes_json(minutes)})


@routes.post("/api/meetings/{id}/minutes/approve")
async def api_minutes_approve(request: web.Request) -> web.StreamResponse:
    principal(request)
    data = await read_json(request)
    minutes = await services(request).minutes.approve(caller(request), int_param(request, "id"),
                                                      version=data.get("version"))
    return web.json_response({"minutes": minutes_json(minutes)})


@routes.get("/api/meetings/{id}/minutes/verify")
async def api_minutes_verify(request: web.Request) -> web.StreamResponse:
    principal(request)
    check = await services(request).minutes.verify(caller(request), int_param(request, "id"))
    return web.json_response({"ok": check.ok, "stored": check.stored, "computed": check.computed,
                              "audited": check.audited, "audit_seq": check.audit_seq})

