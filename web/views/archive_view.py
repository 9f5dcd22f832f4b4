"""What the archive's pages and API show of a recording: its summary row, the time line of its manifest
(chapters, speakers, decisions, pauses, the recorder's own gaps, files) and the sites' gaps a provincial
node's cut left (meetings/services/recording_gaps.py), with the node's copy that fills each."""

from __future__ import annotations

import datetime as dt
from typing import Any

from meetings.models import Meeting
from meetings.models.recordings import Recording
from web.render import LOCAL_TZ


def hms(ms: int | float | None) -> str:
    seconds = int((ms or 0) // 1000)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def local_time(value: dt.datetime | None) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M") if value else ""


def summary(recording: Recording, meeting: Meeting | None, deleted_by: str | None = None) -> dict[str, Any]:
    return {
        "id": recording.id, "meeting_id": recording.meeting_id,
        "meeting_title": meeting.title if meeting else None,
        "meeting_kind": meeting.kind.value if meeting else None,
        "state": recording.state.value,
        "started_at": recording.started_at.isoformat() if recording.started_at else None,
        "ended_at": recording.ended_at.isoformat() if recording.ended_at else None,
        "duration_ms": recording.duration_ms, "size_bytes": recording.size_bytes,
        "manifest_sha256": recording.manifest_sha256, "legal_hold": recording.legal_hold,
        "retention_class": recording.retention_class,
        "deleted_at": recording.deleted_at.isoformat() if recording.deleted_at else None,
        "deleted_by": deleted_by, "delete_reason": recording.delete_reason if recording.deleted_at else None,
        "alarm": recording.alarm,
    }


def office_names(office: Any) -> dict[str, str] | None:
    """A manifest's office ({id, code, name, name_km}) as the names the page shows, per language."""
    if not isinstance(office, dict):
        return None
    return {"en": str(office.get("name", "")), "km": str(office.get("name_km") or office.get("name", ""))}


def timeline(manifest: dict[str, Any] | None) -> dict[str, Any]:
    """What the playback page and the API show of a manifest: chapters, speakers, decisions, pauses, gaps
    and files, times in milliseconds from the recording's start."""
    if manifest is None:
        return {"duration_ms": 0, "chapters": [], "speakers": [], "decisions": [], "votes": [], "pauses": [],
                "gaps": [], "files": [], "started_utc": None}
    record = manifest.get("record") or {}

    def items(value: Any) -> list[dict[str, Any]]:
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    files = []
    for f in items(manifest.get("files")):
        files.append({k: f.get(k) for k in ("name", "kind", "media", "participant_id", "person_id", "office_id",
                                            "label", "first_ms", "last_ms", "size", "sha256", "present")})
    return {
        "started_utc": manifest.get("started_utc"),
        "duration_ms": int(manifest.get("duration_ms") or 0),
        "chapters": [{"item_id": c.get("item_id"), "title": str(c.get("title", "")),
                      "start_ms": int(c.get("start_ms") or 0), "end_ms": c.get("end_ms")}
                     for c in items(record.get("chapters"))],
        "speakers": [{"person_id": s.get("person_id"), "name": str(s.get("name", "")),
                      "office": office_names(s.get("office")),
                      "start_ms": int(s.get("start_ms") or 0), "end_ms": s.get("end_ms")}
                     for s in items(record.get("speakers"))],
        "decisions": [{"item_id": d.get("item_id"), "text": str(d.get("text", "")),
                       "at_ms": int(d.get("at_ms") or 0)} for d in items(record.get("decisions"))],
        "votes": items(record.get("votes")),
        "pauses": [{"start_ms": int(p.get("start_ms") or 0), "end_ms": p.get("end_ms"),
                    "reason": str(p.get("reason", ""))} for p in items(manifest.get("pauses"))],
        "gaps": [{"start_ms": int(g.get("start_ms") or 0), "end_ms": g.get("end_ms"),
                  "reason": str(g.get("reason", ""))} for g in items(manifest.get("gaps"))],
        "files": files,
    }


def proceedings_file(line: dict[str, Any]) -> str | None:
    for f in line["files"]:
        if f.get("kind") == "proceedings" and f.get("present") and isinstance(f.get("name"), str):
            return str(f["name"])
    return None


def site_gaps(recording: Recording, offices: dict[int, dict[str, str]]) -> list[dict[str, Any]]:
    """The recording's sites' gaps: whose (the office's names per language), from and to (ms from the
    recording's start, and UTC), how long, and the node's recording that fills it (None: not yet)."""
    origin = recording.started_at
    gaps = []
    for gap in recording.gaps:
        ended = gap.ended_at or recording.ended_at
        gaps.append({
            "office_id": gap.office_id, "office": offices.get(gap.office_id),
            "start_ms": max(0, int((gap.started_at - origin).total_seconds() * 1000)),
            "end_ms": int((ended - origin).total_seconds() * 1000) if ended else None,
            "started_at": gap.started_at.isoformat(), "ended_at": ended.isoformat() if ended else None,
            "seconds": round((ended - gap.started_at).total_seconds(), 1) if ended else None,
            "filled_by": gap.filled_by_id,
        })
    return gaps
