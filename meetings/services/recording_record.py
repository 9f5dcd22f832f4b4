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


def _clip(start: dt.datetime | None, end: dt.datetime | None, origin: dt.datetime,
          span: int) -> tuple[int, int] | None:
    """(start ms, end ms) of an interval on the recording's time line, cut to the recording's span
    ``0..span``; None when it never touched the recording (or never started)."""
    begin, finish = _ms(start, origin), _ms(end, origin)
    if begin is None or begin > span or (finish is not None and finish < 0):
        return None
    return max(begin, 0), min(finish if finish is not None else span, span)


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
        if (clipped := _clip(item.started_at, item.ended_at, origin, span)) is not None:
            chapters.append({"item_id": item.id, "position": item.position, "title": item.title,
                             "start_ms": clipped[0], "end_ms": clipped[1]})
    speakers = []
    grants = (await session.scalars(select(FloorGrant).where(FloorGrant.meeting_id == meeting_id)
                                    .order_by(FloorGrant.granted_at))).all()
    for grant in grants:
        if (clipped := _clip(grant.granted_at, grant.ended_at, origin, span)) is not None:
            speakers.append({"person_id": grant.person_id, "name": names.get(grant.person_id, ""),
                             "office": office(grant.office_id), "item_id": grant.item_id,
                             "start_ms": clipped[0], "end_ms": clipped[1], "end_reason": grant.end_reason})
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
        if (clipped := _clip(interval.joined_at, interval.left_at, origin, span)) is not None:
            participants.append({"person_id": interval.person_id, "name": names.get(interval.person_id, ""),
                                 "office": office(interval.office_id), "joined_ms": clipped[0],
                                 "left_ms": clipped[1] if interval.left_at is not None else None})
    return {"meeting_id": meeting_id, "recording_id": recording.id, "origin_utc": origin.isoformat(),
            "chapters": chapters, "speakers": speakers, "decisions": decisions, "votes": votes,
            "participants": participants}


def _tally(vote: Vote) -> dict[str, int]:
    tally: dict[str, int] = {}
    for ballot in vote.ballots:
        tally[ballot.choice.value] = tally.get(ballot.choice.value, 0) + 1
    return tally
