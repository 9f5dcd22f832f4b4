"""The manifest of a recording: what is in the folder, how it lines up, and the SHA-256 of each file.

``manifest.json`` is assembled from the journal (:mod:`recordings.journal`), the media files
themselves (read back: first and last frame, frame counts, so the manifest describes what is on
disk, not what was meant to be) and the session's own record, which the caller supplies (agenda
chapters, floor grants as speaker markers, decisions and votes, participants and offices: the
domain's, not recordings/'s). The same function writes the manifest after a clean stop and after a
crash (``recovered: true`` with the gap the crash left).

The SHA-256 of ``manifest.json`` is the recording's seal: the caller puts it into the audit chain
and the minutes. :func:`verify` names every file that no longer matches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_atomically
from .errors import RecordingError
from .journal import JOURNAL_NAME, journal_start, read_journal
from .webm_repair import read_frames

MANIFEST_NAME = "manifest.json"
FORMAT = "cabinet-recording/1"
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class TrackContent:
    """What a media file holds, read back from it."""

    frames: dict[int, int]
    first_ms: int
    last_ms: int


def read_content(path: Path) -> TrackContent:
    frames: dict[int, int] = {}
    first = last = -1
    for frame in read_frames(path):
        frames[frame.track] = frames.get(frame.track, 0) + 1
        if first < 0 or frame.timestamp_ms < first:
            first = frame.timestamp_ms
        last = max(last, frame.timestamp_ms)
    return TrackContent(frames, first, last)


def assemble(directory: Path, record: dict[str, Any] | None = None, *,
             stats: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """The manifest of a finalised folder (media files closed or repaired) as a dict."""
    start = journal_start(directory)
    events = read_journal(directory / JOURNAL_NAME)
    stopped = next((e for e in events if e["event"] == "stop"), None)
    files: list[dict[str, Any]] = []
    timing: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for event in events:  # the time line's evidence, journaled as it was made
        if event["event"] in ("anchor", "sender_report"):
            entry_ = {k: v for k, v in event.items() if k not in ("event", "name")}
            timing.setdefault(str(event.get("name")), {"anchors": [], "sender_reports": []})[
                "anchors" if event["event"] == "anchor" else "sender_reports"].append(entry_)
    last_ms = 0
    for event in events:
        if event["event"] != "file":
            continue
        name = str(event["name"])
        path = directory / name
        entry: dict[str, Any] = {k: v for k, v in event.items() if k not in ("event", "media_ms")}
        entry["opened_ms"] = event.get("media_ms", 0)
        if not path.exists():
            entry.update(present=False)  # nothing was ever written (e.g. no keyframe came)
            files.append(entry)
            continue
        content = read_content(path)
        last_ms = max(last_ms, content.last_ms)
        entry.update(
            present=True,
            size=path.stat().st_size,
            sha256=file_sha256(path),
            first_ms=content.first_ms,
            last_ms=content.last_ms,
            frames={str(k): v for k, v in sorted(content.frames.items())},
        )
        entry.update(timing.get(name, {"anchors": [], "sender_reports": []}))
        if stats and name in stats:
            entry["received"] = stats[name]
        files.append(entry)
    pauses: list[dict[str, Any]] = []
    for event in events:
        if event["event"] == "pause":
            pauses.append({"start_ms": event["media_ms"], "end_ms": None, "reason": event.get("reason", "")})
        elif event["event"] == "resume" and pauses and pauses[-1]["end_ms"] is None:
            pauses[-1]["end_ms"] = event["media_ms"]
    gaps: list[dict[str, Any]] = []
    if stopped is None:
        gaps.append({"start_ms": last_ms, "end_ms": None,
                     "reason": "the server stopped unexpectedly; files were finalised at the next start"})
    end_ms = int(stopped["media_ms"]) if stopped is not None else last_ms
    for pause in pauses:
        if pause["end_ms"] is None:
            pause["end_ms"] = end_ms
    return {
        "format": FORMAT,
        "recording": {k: v for k, v in start.items() if k != "event"},
        "started_utc": start.get("utc"),
        "duration_ms": end_ms,
        "recovered": stopped is None,
        "files": files,
        "pauses": pauses,
        "gaps": gaps,
        "stage": [{k: v for k, v in e.items() if k != "event"} for e in events if e["event"] == "stage"],
        "alarms": [{"media_ms": e.get("media_ms", 0), "message": e.get("message", "")}
                   for e in events if e["event"] == "alarm"],
        "record": record or {},
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> str:
    """Write ``manifest.json`` (atomically: a crash leaves the old one or the new one) and return
    its SHA-256."""
    data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8") + b"\n"
    write_atomically(directory / MANIFEST_NAME, data)
    return hashlib.sha256(data).hexdigest()


def load_manifest(directory: Path) -> dict[str, Any]:
    with open(directory / MANIFEST_NAME, "rb") as f:
        manifest = json.load(f)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RecordingError(f"{directory.name}: {MANIFEST_NAME} is not a Cabinet recording manifest")
    return manifest


@dataclass(frozen=True)
class Mismatch:
    name: str
    problem: str

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}"


def verify(directory: Path, manifest_sha256: str | None = None) -> list[Mismatch]:
    """Every way the folder differs from its manifest (and the manifest from ``manifest_sha256``,
    the seal kept in the database and audit chain). Empty: intact."""
    problems: list[Mismatch] = []
    path = directory / MANIFEST_NAME
    if not path.exists():
        return [Mismatch(MANIFEST_NAME, "missing")]
    if manifest_sha256 is not None and file_sha256(path) != manifest_sha256:
        problems.append(Mismatch(MANIFEST_NAME, "does not match the SHA-256 sealed when the recording closed"))
    try:
        manifest = load_manifest(directory)
    except (ValueError, RecordingError) as exc:
        return problems + [Mismatch(MANIFEST_NAME, f"unreadable: {exc}")]
    listed = set()
    for entry in manifest.get("files", []):
        name = str(entry.get("name", ""))
        listed.add(name)
        if not entry.get("present"):
            continue
        file = directory / name
        if not file.exists():
            problems.append(Mismatch(name, "missing"))
        elif file.stat().st_size != entry.get("size"):
            problems.append(Mismatch(name, f"size {file.stat().st_size} differs from {entry.get('size')}"))
        elif file_sha256(file) != entry.get("sha256"):
            problems.append(Mismatch(name, "SHA-256 differs from the manifest"))
    for file in sorted(directory.iterdir()):
        if file.suffix == ".webm" and file.name not in listed:
            problems.append(Mismatch(file.name, "not in the manifest"))
    return problems
