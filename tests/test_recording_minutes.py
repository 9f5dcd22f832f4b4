"""A sealed recording's manifest SHA-256 goes into the minutes drafted after it, and so into the approved,
hashed minutes and their printed form (issue 12)."""

from __future__ import annotations

import datetime as dt
import json

from meetings import demo
from meetings.models import MeetingKind
from meetings.services import Services
from web.render import create_environment
from test_recordings_service import CLI, SHA, closed_recording, meeting_of


async def test_minutes_carry_the_recordings_seals(services: Services) -> None:
    await demo.load(services, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=14))
    s = services
    session = await meeting_of(s, MeetingKind.CABINET_SESSION)
    rec_id = await closed_recording(s, session)
    await s.session.close(CLI, session.id)
    minutes = await s.minutes.draft(CLI, session.id)
    body = json.loads(minutes.body)
    assert [(r["id"], r["manifest_sha256"], r["duration_ms"]) for r in body["recordings"]] == [(rec_id, SHA, 5000)]
    approved = await s.minutes.approve(CLI, session.id, version=minutes.version)
    assert json.loads(approved.body)["recordings"][0]["manifest_sha256"] == SHA
    assert (await s.minutes.verify(CLI, session.id)).ok
    # The printed minutes (the PDF's HTML) list the recording with its seal.
    template = create_environment().from_string(
        '{% from "meetings/_record.html" import body_view %}{{ body_view(body, "en", hm) }}')
    printed = template.render(body=json.loads(approved.body), hm=lambda value, with_date=False: value or "")
    assert f"Recording {rec_id}" in printed and SHA in printed
