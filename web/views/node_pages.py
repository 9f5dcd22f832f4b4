"""The secretariat's page of provincial nodes: every office's registered node, its link now, and the
forms that register a node (its credential shown once) and revoke one. The service checks the role
and writes the audit events (meetings/services/nodes.py); the link state is the centre's own registry
of connected control channels (web/views/nodes.py)."""

from __future__ import annotations

from aiohttp import web

from meetings.errors import MeetingsError
from meetings.policy import Action, require
from web.forms import caller, int_param, read_form, services
from web.middleware import see_other
from web.render import render
from web.views.nodes import cut_off, node_links

routes = web.RouteTableDef()


async def _page(request: web.Request, *, values: dict[str, object] | None = None,
                error: MeetingsError | None = None, status: int = 200) -> web.Response:
    registered = await services(request).nodes.list(caller(request))
    offices = await services(request).offices.list(caller(request))
    return render(request, "nodes/list.html", {
        "nodes": registered, "links": node_links(request.app).links, "offices": offices,
        "link_history": node_links(request.app).history,
        "values": values or {}, "error": error}, status=status)


@routes.get("/nodes", name="nodes")
async def node_list(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_NODES)
    return await _page(request)


@routes.post("/nodes")
async def node_register(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_NODES)
    form = await read_form(request)
    try:
        node, credential = await services(request).nodes.add(caller(request), office_id=form.get("office_id"),
                                                             name=form.get("name"))
    except MeetingsError as exc:
        if exc.code not in ("invalid", "conflict"):
            raise
        return await _page(request, values=form, error=exc, status=400)
    return render(request, "nodes/created.html", {"node": node, "credential": credential})  # no-store: web/middleware.py


@routes.post("/nodes/{id}/revoke")
async def node_revoke(request: web.Request) -> web.StreamResponse:
    require(caller(request), Action.MANAGE_NODES)
    node_id = int_param(request, "id")
    await services(request).nodes.revoke(caller(request), node_id)
    link = node_links(request.app).get(node_id)
    if link is not None:  # cut off now, not at the next revalidation
        await cut_off(link)
    return see_other("/nodes")
