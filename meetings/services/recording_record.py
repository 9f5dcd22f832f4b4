"""The session's record for a recording's manifest: what happened, on the recording's time line.

Agenda chapters (item start and end from the live record), floor grants as speaker markers,
decisions and votes with their times, and who was connected from which office: everything in
milliseconds from ``origin`` (the instant the recording started), clipped to the recording's own
span, so that a player can jump to an item and a reader can check the files against the minutes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.models import AgendaItem, AttendanceInterval, Decision, FloorGrant, Office, Person
from meetings.models.decisions import Vote
from meetings.models.recordings import Recording


def _ms(moment: dt.datetime | None, origin: dt.datetime) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int((moment - origin).total_seconds() * 1000)


def _overlaps(start: int | None, end: int | None, span_end: int) -> bool:
    return start is not None and start <= span_end and (end is None or end >= 0)


async def session_record(session: AsyncSession, recording: Recording, origin: dt.datetime,
                         until: dt.datetime) -> dict[str, Any]:
    """The record of ``recording``'s meeting between ``origin`` and ``until`` (see the module docstring)."""
    meeting_id = recording.meeting_id
    span = _ms(until, origin) or 0
    offices = {o.id: o for o in (await session.scalars(select(Office))).all()}
    names = {pid: name for pid, name in (await session.execute(select(Person.id, Person.full_name))).all()}

    def office(office_id: int | None) -> dict[str, Any] | None:
        found = offices.get(office_id) if office_id is not None else None
        return None if found is None else {"id": found.id, "code": found.code, "name": found.name_en,
                                           "name_km": found.name_km}

    chapters = []
    items = (await session.scalars(select(AgendaItem).where(AgendaItem.meeting_id == meeting_id)
                                   .order_by(AgendaItem.position))).all()
    for item in items:
        start, end = _ms(item.started_at, origin), _ms(item.ended_at, origin)
        if _overlaps(start, end, span):
            chapters.append({"item_id": item.id, "position": item.position, "title": item.title,
                             "start_ms": max(start or 0, 0), "end_ms": min(end if end is not None else span, span)})
    speakers = []
    grants = (await session.scalars(select(FloorGrant).where(FloorGrant.meeting_id == meeting_id)
                                    .order_by(FloorGrant.granted_at))).all()
    for grant in grants:
        start, end = _ms(grant.granted_at, origin), _ms(grant.ended_at, origin)
        if _overlaps(start, end, span):
            speakers.append({"person_id": grant.person_id, "name": names.get(grant.person_id, ""),
                             "office": office(grant.office_id), "item_id": grant.item_id,
                             "start_ms": max(start or 0, 0), "end_ms": min(end if end is not None else span, span),
                             "end_reason": grant.end_reason})
    decisions = [{"item_id": d.item_id, "outcome": d.outcome.value, "text": d.text, "at_ms": _ms(d.recorded_at, origin)}
                 for d in (await session.scalars(select(Decision).where(Decision.meeting_id == meeting_id))).all()]
    votes = [{"item_id": v.item_id, "question": v.question, "opened_ms": _ms(v.opened_at, origin),
              "closed_ms": _ms(v.closed_at, origin), "quorum_met": v.quorum_met,
              "tally": _tally(v)}
             for v in (await session.scalars(select(Vote).where(Vote.meeting_id == meeting_id))).all()]
    participants = []
    intervals = (await session.scalars(select(AttendanceInterval).where(AttendanceInterval.meeting_id == meeting_id)
                                       .order_by(AttendanceInterval.joined_at))).all()
    for interval in intervals:
        start, end = _ms(interval.joined_at, origin), _ms(interval.left_at, origin)
        if _overlaps(start, end, span):
            participants.append({"person_id": interval.person_id, "name": names.get(interval.person_id, ""),
                                 "office": office(interval.office_id), "joined_ms": start, "left_ms": end})
    return {"meeting_id": meeting_id, "recording_id": recording.id, "origin_utc": origin.isoformat(),
            "chapters": chapters, "speakers": speakers, "decisions": decisions, "votes": votes,
            "participants": participants}


def _tally(vote: Vote) -> dict[str, int]:
    tally: dict[str, int] = {}
    for ballot in vote.ballots:
        tally[ballot.choice.value] = tally.get(ballot.choice.value, 0) + 1
    return tally
