"""The meeting room: the participant's page (pre-join check, then the session).

The page itself is plain HTML; the scripts under ``/static/js/`` do the media and signaling. The
page is only served with its scripts to people who may join: everyone else gets a refusal page that
loads no script, so no camera is opened and no signaling connection is made.
"""

from __future__ import annotations

from aiohttp import web

from meetings.errors import NotFound
from meetings.policy import Action, decide
from meetings.services.common import meeting_access
from web.forms import caller, int_param, principal, services
from web.refusals import note as note_refusal
from web.render import render

routes = web.RouteTableDef()

#: How many videos a participant receives by default, and in audio-only mode.
DEFAULT_LAST_N = 9


@routes.get("/meetings/{id}/room", name="room")
async def room_page(request: web.Request) -> web.StreamResponse:
    me = principal(request)
    meeting_id = int_param(request, "id")
    try:
        meeting = await services(request).meetings.get(caller(request), meeting_id)
    except NotFound:
        note_refusal(request, "not_found")
        # A meeting the caller may not see does not exist for them: say so plainly, without telling which.
        return render(request, "meetings/room.html", {"refused": "missing", "meeting": None}, status=404)
    access = meeting_access(meeting)
    join = decide(me, Action.JOIN_MEETING, access)
    if not join.allowed:
        note_refusal(request, "forbidden")
        return render(request, "meetings/room.html", {"refused": "not_allowed", "meeting": meeting,
                                                      "reason": join.reason}, status=403)
    may_publish = decide(me, Action.PUBLISH_MEDIA, access).allowed
    return render(request, "meetings/room.html", {
        "refused": None,
        "meeting": meeting,
        "may_publish": may_publish,
        "default_last_n": DEFAULT_LAST_N,
    })
