"""Which refused requests reach the audit trail, and what their target is (counted by RefusalLog).

Audited: a 403 or 404 that a service or view raised (``PermissionDenied``, ``NotFound``) on a matched
route, that is on a protected object or page; and a refused CSRF check of a logged-in user. Not audited:
a path that matched no route or an id that is not a number (aiohttp's own 404), and refusals of the
caller's input (400), which say nothing about reaching for something protected.
"""

from __future__ import annotations

from aiohttp import web

from meetings.errors import MeetingsError, NotFound, PermissionDenied
from web import keys

#: The first segment of a route (after /api) names the kind of object it serves.
TARGET_TYPES = {
    "meetings": "meeting",
    "documents": "document",
    "agenda-items": "agenda_item",
    "offices": "office",
    "people": "person",
    "series": "series",
    "notices": "notice",
    "audit": "audit",
    "calendar": "calendar_feed",
    "calendar-feed": "calendar_feed",
    "me": "me",
}


def target_of(request: web.Request) -> tuple[str, str, str] | None:
    """(target type, target id, route template) of a request that matched a route, else None."""
    match_info = request.match_info
    resource = match_info.route.resource
    if resource is None:
        return None
    template = resource.canonical
    segments = [s for s in template.split("/") if s]
    if segments[:1] == ["api"]:
        segments = segments[1:]
    first = segments[0] if segments else ""
    target_type = TARGET_TYPES.get(first, first.replace("-", "_"))
    # Only the ``{id}`` parameter and the route's template are kept: a secret segment (a calendar
    # feed's ``{token}``) never reaches the trail.
    target_id = match_info.get("id", "")
    return target_type, target_id, f"{request.method} {template}"


def note_error(request: web.Request, exc: MeetingsError) -> None:
    """Count a 403/404 a service or view raised for this request."""
    if isinstance(exc, PermissionDenied):
        kind = "forbidden"
    elif isinstance(exc, NotFound):
        kind = "not_found"
    else:
        return
    note(request, kind)


def note_csrf(request: web.Request) -> None:
    """Count a refused CSRF (or origin) check, for a logged-in caller only."""
    caller = request.get(keys.CALLER)
    if caller is not None and caller.principal is not None:
        note(request, "csrf")


def note(request: web.Request, kind: str) -> None:
    """Count a refusal of this request (for views that answer a refusal page themselves)."""
    caller = request.get(keys.CALLER)
    target = target_of(request)
    if caller is None or target is None:
        return
    target_type, target_id, route = target
    request.app[keys.SERVICES].refusals.note(caller, kind, target_type=target_type, target_id=target_id,
                                             route=route)
