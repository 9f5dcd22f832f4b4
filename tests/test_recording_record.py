"""The session's record in a recording's manifest (meetings/services/recording_record.py): agenda chapters
and floor grants on the recording's time line, cut to the recording's own span."""

from __future__ import annotations

import datetime as dt

from meetings import demo
from meetings.models import MeetingKind
from meetings.services import Services
from test_recordings_service import CLI, meeting_of


async def test_chapters_and_speakers_are_on_the_recordings_time_line(services: Services) -> None:
    await demo.load(services, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=14))
    s = services
    session = await meeting_of(s, MeetingKind.CABINET_SESSION)
    first, second = sorted(session.agenda, key=lambda i: i.position)[:2]
    governor = await s.people.find(CLI, "governor")
    await s.session.open(CLI, session.id)
    await s.live.set_current_item(CLI, session.id, first.id)  # before the recording starts: clipped to 0
    recording = await s.recordings.start(CLI, session.id)
    origin = recording.started_at
    await s.floor.grant(CLI, session.id, person_id=governor.id, office_id=governor.office_id)
    await s.live.set_current_item(CLI, session.id, second.id)
    record = await s.recordings.session_record(CLI, recording.id, origin)

    chapters = record["chapters"]
    assert [(c["item_id"], c["title"]) for c in chapters] == [(first.id, first.title), (second.id, second.title)]
    assert chapters[0]["start_ms"] == 0 and chapters[0]["end_ms"] <= chapters[1]["start_ms"]
    span_ms = (dt.datetime.now(dt.UTC) - origin).total_seconds() * 1000
    assert 0 <= chapters[1]["start_ms"] <= chapters[1]["end_ms"] <= span_ms + 50
    [speaker] = record["speakers"]
    assert speaker["person_id"] == governor.id and speaker["name"] == governor.full_name
    assert speaker["office"]["id"] == governor.office_id and speaker["office"]["name_km"]
    assert 0 <= speaker["start_ms"] <= span_ms + 50 and speaker["item_id"] == first.id
