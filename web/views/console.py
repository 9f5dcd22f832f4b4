"""The moderators' console: a live board of every invited site, and the controls that run a session.

Served only to those who may moderate the meeting (the secretariat and an invited chair for a
cabinet session, the host commander for a briefing). The page lists every expected site and person
from the database; the scripts under ``/static/js/console*.js`` join the signaling room as a
participant that neither publishes nor subscribes, keep the board live from the server's events,
and send moderation requests, which the server checks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from meetings.errors import NotFound
from meetings.models import Meeting, Office, Person
from meetings.policy import Action, decide
from meetings.services.common import meeting_access
from web import keys
from web.forms import caller, int_param, principal, services
from web.refusals import note as note_refusal
from web.render import render

routes = web.RouteTableDef()


@dataclass
class Site:
    """One place expected at the meeting: an office, with the accounts that may join from it."""

    office: Office
    host: bool = False
    invited: bool = True
    people: list[Person] = field(default_factory=list)


def sites_of(meeting: Meeting, people: list[Person]) -> list[Site]:
    """The host office first, then the invited offices in invitation order, then offices of invited people."""
    sites: dict[int, Site] = {meeting.host_office_id: Site(meeting.host_office, host=True, invited=False)}
    for invitation in meeting.invitations:
        if invitation.office is not None and invitation.office_id not in sites:
            sites[invitation.office.id] = Site(invitation.office)
    for person in people:
        site = sites.get(person.office_id)
        if site is None:
            site = sites[person.office_id] = Site(person.office, invited=False)
        site.people.append(person)
    return list(sites.values())


@routes.get("/meetings/{id}/console", name="console")
async def console_page(request: web.Request) -> web.StreamResponse:
    me = principal(request)
    meeting_id = int_param(request, "id")
    try:
        meeting = await services(request).meetings.get(caller(request), meeting_id)
    except NotFound:
        note_refusal(request, "not_found")
        return render(request, "meetings/console.html", {"refused": "missing", "meeting": None}, status=404)
    decision = decide(me, Action.MODERATE_MEETING, meeting_access(meeting))
    if not decision.allowed:
        note_refusal(request, "forbidden")
        return render(request, "meetings/console.html", {"refused": "not_allowed", "meeting": meeting},
                      status=403)
    people = list(await services(request).meetings.expected_people(caller(request), meeting.id))
    khmer = request.get(keys.LOCALE) == "km"

    def office_name(office: Office | None) -> str:
        if office is None:
            return ""
        return office.name_km if khmer and office.name_km else office.name_en

    context: dict[str, Any] = {
        "refused": None,
        "meeting": meeting,
        "sites": sites_of(meeting, people),
        "office_name": office_name,
        "me_person_id": me.person_id,
    }
    return render(request, "meetings/console.html", context)
