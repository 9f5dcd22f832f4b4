"""Retention: the server deletes the media of recordings past their retention period, never one on legal
hold, and leaves a tombstone on disk and in the audit trail (cabinet/recordings.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cabinet.recordings import apply_retention
from meetings import demo
from meetings.models import MeetingKind, RecordingState
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.common import principal_of
from recordings.tombstone import TOMBSTONE_NAME
from test_recordings_service import CLI, closed_recording, meeting_of


async def test_retention_deletes_media_keeps_the_tombstone_and_respects_legal_hold(
        services: Services, tmp_path: Path) -> None:
    await demo.load(services, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=14))
    s = services
    session = await meeting_of(s, MeetingKind.CABINET_SESSION)
    sec = Caller(principal_of(await s.people.find(CLI, "secretariat")), "127.0.0.1")
    kept_id = await closed_recording(s, session, files=("track-001-audio.webm",))
    due_id = await closed_recording(s, session, files=("track-001-audio.webm", "proceedings.webm"))
    folders = {}
    for rec_id in (kept_id, due_id):
        rec = await s.recordings.set_retention(sec, rec_id, "5y")
        folders[rec_id] = tmp_path / rec.key
        folders[rec_id].mkdir()
        for name in ("track-001-audio.webm", "proceedings.webm", "manifest.json", "journal.jsonl"):
            (folders[rec_id] / name).write_bytes(b"x")
    (tmp_path / ".exports").mkdir()
    export = tmp_path / ".exports" / f"{(await s.recordings.get(CLI, due_id)).key}.mp4"
    export.write_bytes(b"mp4")
    await s.recordings.set_legal_hold(sec, kept_id, True, "inquiry")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1826)

    assert await apply_retention(s, tmp_path, now=later) == 1
    assert await apply_retention(s, tmp_path, now=later) == 0  # done once
    due = await s.recordings.get(CLI, due_id)
    assert due.state is RecordingState.DELETED and "retention period '5y' ended" in due.delete_reason
    assert sorted(p.name for p in folders[due_id].iterdir()) == ["journal.jsonl", "manifest.json", TOMBSTONE_NAME]
    stone = json.loads((folders[due_id] / TOMBSTONE_NAME).read_text())
    assert stone["by"] == "retention" and sorted(stone["files"]) == ["proceedings.webm", "track-001-audio.webm"]
    assert not export.exists()
    kept = await s.recordings.get(CLI, kept_id)
    assert kept.state is RecordingState.CLOSED and (folders[kept_id] / "track-001-audio.webm").exists()
    events = await s.audit.recent(CLI, limit=50, action_prefix="recording.delete")
    assert [json.loads(e.details)["reason"] for e in events] == [due.delete_reason]
