"""JSON API for what happens before the session (see web/views/schedule.py for the pages)."""

from __future__ import annotations

from aiohttp import web


from web.forms import caller, int_param, principal, read_json, services
from web.views.schedule import base_url, notice_json, occurrence_json, series_json, tally_json

routes = web.RouteTableDef()


@routes.get("/api/series")
async def series_list(request: web.Request) -> web.StreamResponse:
    principal(request)
    items = await services(request).schedule.list_series(caller(request))
    return web.json_response({"series": [series_json(s) for s in items]})


@routes.post("/api/series")
async def series_create(request: web.Request) -> web.StreamResponse:
    principal(request)
    d = await read_json(request)
    svc = services(request)
    series = await svc.schedule.create_series(
        caller(request), title=d.get("title"), kind=d.get("kind"), host_office_id=d.get("host_office_id"),
        weekday=d.get("weekday"), local_time=d.get("local_time"), duration_minutes=d.get("duration_minutes"),
        starts_on=d.get("starts_on"), until=d.get("until"), timezone=d.get("timezone") or "Asia/Phnom_Penh",
        invited_office_ids=d.get("invited_office_ids"), invited_person_ids=d.get("invited_person_ids"))
    occurrences = await svc.schedule.occurrences(caller(request), series.id)
    return web.json_response({"series": series_json(series),
                              "occurrences": [occurrence_json(m) for m in occurrences]}, status=201)


@routes.get("/api/series/{id}")
async def series_get(request: web.Request) -> web.StreamResponse:
    principal(request)
    svc = services(request)
    series = await svc.schedule.get_series(caller(request), int_param(request, "id"))
    occurrences = await svc.schedule.occurrences(caller(request), series.id)
    return web.json_response({"series": series_json(series), "occurrences": [occurrence_json(m) for m in occurrences]})


@routes.post("/api/series/{id}/generate")
async def series_generate(request: web.Request) -> web.StreamResponse:
    principal(request)
    d = await read_json(request) if request.can_read_body else {}
    created = await services(request).schedule.generate(caller(request), int_param(request, "id"),
                                                        weeks=d.get("weeks", 12))
    return web.json_response({"created": [occurrence_json(m) for m in created]})


@routes.post("/api/series/{id}/end")
async def series_end(request: web.Request) -> web.StreamResponse:
    principal(request)
    d = await read_json(request) if request.can_read_body else {}
    series = await services(request).schedule.end_series(caller(request), int_param(request, "id"),
                                                         last_date=d.get("last_date"))
    return web.json_response({"series": series_json(series)})


@routes.post("/api/meetings/{id}/move")
async def move(request: web.Request) -> web.StreamResponse:
    principal(request)
    d = await read_json(request)
    m = await services(request).schedule.move(caller(request), int_param(request, "id"),
                                              starts_at=d.get("starts_at"), ends_at=d.get("ends_at"))
    return web.json_response({"meeting": occurrence_json(m)})


@routes.post("/api/meetings/{id}/cancel")
async def cancel(request: web.Request) -> web.StreamResponse:
    principal(request)
    d = await read_json(request) if request.can_read_body else {}
    m = await services(request).schedule.cancel(caller(request), int_param(request, "id"), reason=d.get("reason", ""))
    return web.json_response({"meeting": occurrence_json(m)})


@routes.get("/api/notices")
async def notices(request: web.Request) -> web.StreamResponse:
    principal(request)
    svc = services(request)
    items = await svc.notices.list(caller(request), unread_only=request.query.get("unread") == "1")
    return web.json_response({"unread": await svc.notices.unread_count(caller(request)),
                              "notices": [notice_json(n) for n in items]})


@routes.post("/api/notices/{id}/read")
async def notice_read(request: web.Request) -> web.StreamResponse:
    principal(request)
    await services(request).notices.mark_read(caller(request), int_param(request, "id"))
    return web.json_response({"ok": True})


@routes.post("/api/notices/read-all")
async def notices_read_all(request: web.Request) -> web.StreamResponse:
    principal(request)
    count = await services(request).notices.mark_read(caller(request))
    return web.json_response({"ok": True, "marked": count})


@routes.post("/api/me/calendar-feed")
async def feed_rotate(request: web.Request) -> web.StreamResponse:
    principal(request)
    token = await services(request).calendar.rotate(caller(request))
    return web.json_response({"url": f"{base_url(request)}/calendar/{token}.ics"}, status=201)


@routes.delete("/api/me/calendar-feed")
async def feed_revoke(request: web.Request) -> web.StreamResponse:
    principal(request)
    await services(request).calendar.revoke(caller(request))
    return web.json_response({"ok": True})


@routes.get("/api/meetings/{id}/documents")
async def documents(request: web.Request) -> web.StreamResponse:
    principal(request)
    by_item = await services(request).documents.list(caller(request), int_param(request, "id"))
    return web.json_response({"documents": [
        {"id": d.id, "item_id": d.item_id, "filename": d.filename, "size_bytes": d.size_bytes, "sha256": d.sha256,
         "uploaded_at": d.uploaded_at.isoformat(), "url": f"/api/documents/{d.id}"}
        for docs in by_item.values() for d in docs]})


@routes.post("/api/agenda-items/{id}/documents")
async def upload(request: web.Request) -> web.StreamResponse:
    """The raw PDF as the body (Content-Type application/pdf), streamed; the name in X-Filename."""
    principal(request)
    from urllib.parse import unquote

    document = await services(request).documents.upload(
        caller(request), int_param(request, "id"), filename=unquote(request.headers.get("X-Filename", "document.pdf")),
        content_type=request.content_type, body=request.content.iter_chunked(64 * 1024))
    return web.json_response({"document": {"id": document.id, "item_id": document.item_id,
                                           "filename": document.filename, "size_bytes": document.size_bytes,
                                           "sha256": document.sha256}}, status=201)


@routes.delete("/api/documents/{id}")
async def document_delete(request: web.Request) -> web.StreamResponse:
    principal(request)
    await services(request).documents.delete(caller(request), int_param(request, "id"))
    return web.json_response({"ok": True})


@routes.put("/api/meetings/{id}/positions-deadline")
async def deadline(request: web.Request) -> web.StreamResponse:
    principal(request)
    d = await read_json(request)
    m = await services(request).positions.set_deadline(caller(request), int_param(request, "id"),
                                                       d.get("positions_deadline"))
    return web.json_response({"positions_deadline": m.positions_deadline.isoformat() if m.positions_deadline
                              else None})


@routes.get("/api/meetings/{id}/positions")
async def my_positions(request: web.Request) -> web.StreamResponse:
    principal(request)
    mine = await services(request).positions.mine(caller(request), int_param(request, "id"))
    return web.json_response({"positions": [{"item_id": p.item_id, "stance": p.stance.value, "comment": p.comment,
                                             "updated_at": p.updated_at.isoformat()} for p in mine.values()]})


@routes.put("/api/meetings/{id}/items/{item}/position")
async def submit_position(request: web.Request) -> web.StreamResponse:
    principal(request)
    d = await read_json(request)
    p = await services(request).positions.submit(caller(request), int_param(request, "id"),
                                                 int_param(request, "item"), stance=d.get("stance"),
                                                 comment=d.get("comment", ""))
    return web.json_response({"position": {"item_id": p.item_id, "stance": p.stance.value, "comment": p.comment}})


@routes.get("/api/meetings/{id}/tally")
async def tally(request: web.Request) -> web.StreamResponse:
    principal(request)
    items = await services(request).positions.tally(caller(request), int_param(request, "id"))
    return web.json_response({"items": [tally_json(t) for t in items]})


@routes.post("/api/meetings/{id}/adopt-en-bloc")
async def adopt(request: web.Request) -> web.StreamResponse:
    principal(request)
    decisions = await services(request).positions.adopt_en_bloc(caller(request), int_param(request, "id"))
    return web.json_response({"decisions": [{"id": d.id, "item_id": d.item_id, "outcome": d.outcome.value,
                                             "en_bloc": d.en_bloc} for d in decisions]}, status=201)



