"""iCalendar (RFC 5545) rendering of meetings, with the ``icalendar`` library (folding, escaping, CRLF).

Each meeting is one VEVENT whose UID never changes (moving or cancelling an occurrence keeps it), with
SEQUENCE from the meeting, STATUS:CANCELLED for a cancelled one, and times in Asia/Phnom_Penh with the
matching VTIMEZONE, so calendar apps show the right local time wherever they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import icalendar

from meetings.models import Meeting, MeetingState
from meetings.models.schedule import PHNOM_PENH

PRODID = "-//Cabinet//Cabinet meetings//EN"
UID_DOMAIN = "cabinet.meetings"


def uid(meeting: Meeting) -> str:
    return f"meeting-{meeting.id}@{UID_DOMAIN}"


def event(meeting: Meeting, *, base_url: str = "", tz: ZoneInfo = ZoneInfo(PHNOM_PENH)) -> icalendar.Event:
    ev = icalendar.Event()
    ev.add("uid", uid(meeting))
    ev.add("dtstamp", (meeting.updated_at or meeting.created_at).astimezone(dt.UTC))
    ev.add("dtstart", meeting.starts_at.astimezone(tz))
    ev.add("dtend", meeting.ends_at.astimezone(tz))
    ev.add("summary", meeting.title)
    ev.add("sequence", meeting.sequence or 0)
    ev.add("status", "CANCELLED" if meeting.state is MeetingState.CANCELLED else "CONFIRMED")
    ev.add("class", "CONFIDENTIAL" if meeting.kind.value == "briefing" else "PRIVATE")
    ev.add("location", meeting.host_office.name_en if meeting.host_office else "")
    lines = [meeting.description] if meeting.description else []
    lines += [f"{i.position}. {i.title}" for i in meeting.agenda]
    if lines:
        ev.add("description", "\n".join(lines))
    if base_url:
        ev.add("url", f"{base_url.rstrip('/')}/meetings/{meeting.id}")
    return ev


def calendar(meetings: Iterable[Meeting], *, name: str, base_url: str = "", method: str | None = None) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", PHNOM_PENH)
    for meeting in meetings:
        cal.add_component(event(meeting, base_url=base_url))
    cal.add_missing_timezones()
    return cal.to_ical()
