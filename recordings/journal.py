"""The recording's journal: an append-only JSON-lines file beside the media files.

What a crash must not lose and the media files do not hold: when the recording started (UTC),
which file carries whose track, anchors of the time line, pauses, alarms. One event per line,
written with one ``os.write`` as it happens (rare events: never per packet), so after a
``kill -9`` the journal is complete up to the last event; a half-written last line is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import RecordingError, RecordingWriteError

JOURNAL_NAME = "journal.jsonl"


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)

    def append(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, ensure_ascii=False, separators=(",", ":")) + "\n"
        data = line.encode("utf-8")
        try:
            written = os.write(self._fd, data)
        except OSError as exc:
            raise RecordingWriteError(f"cannot write the journal {self.path.name}: {exc.strerror}") from exc
        if written != len(data):
            raise RecordingWriteError(f"short write to the journal {self.path.name}")

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = -1


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete event of a journal (a torn last line, from a crash mid-write, is skipped)."""
    events: list[dict[str, Any]] = []
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                events.append(event)
    return events


def journal_start(directory: Path) -> dict[str, Any]:
    """The start event of a recording folder's journal: when the recording started and which meeting
    and row it is; RecordingError when there is none."""
    start = next((e for e in read_journal(directory / JOURNAL_NAME) if e["event"] == "start"), None)
    if start is None:
        raise RecordingError(f"{directory.name}: the journal has no start event")
    return start
