"""A journal of attendance the database refused, so a crash while the disk is full loses none of it.

When ``AttendanceRecorder.flush`` (signaling/attendance.py) fails, the state of each connection record in
the failed batch is appended to ``<data>/journal/attendance.jsonl`` and fsynced, one JSON line per state::

    {"key": "...", "meeting": 3, "person": 7, "office": 2, "client": "room", "interval_id": null,
     "joined_at": "...", "last_seen_at": "...", "left_at": null, "end_reason": ""}

plus one short line per failed heartbeat, ``{"seen": "...", "meeting": 3}``: every connection of that
meeting that the journal holds open was alive then. A line is written only when a record's state changed
since it was last journaled, so the journal stays small; it is bounded by its reserved size.

**Space.** The file is reserved at start: ``RESERVED_BYTES`` of real blocks (zeros are written, it is not
sparse), and records are written over those zeros in place, so appending never needs a new block of the
file system: it succeeds on a full disk. (A ballast file deleted on the first failure would free space for
whichever writer asks first, the database or the program that filled the disk; a reservation inside the
journal's own file cannot be taken by anyone else.) The text ends at the first NUL byte. When every record
in it has reached the database the journal is emptied (a NUL at its start, then zeros), keeping its blocks.
If the reservation could not be made at start (the disk was already full), it is retried later
(``reserve``, from the storage probe) once there is room.

**Replay.** At the next start, before any connection is accepted and before the intervals a crash left
open are closed (``recover_crashed``), ``replay`` writes the journal into the database, then empties it.
It is idempotent: an interval already in the database (same meeting, person, office, client and join time)
is merged (its end or its last evidence of life moved later), never duplicated.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from meetings.db import Database
from meetings.models import AttendanceInterval
from meetings.models.base import utcnow
from meetings.services.attendance import END_REASONS, ConnectionRecord

log = logging.getLogger("meetings.attendance_journal")

RESERVED_BYTES = 8 * 1024 * 1024
FILE_NAME = "attendance.jsonl"
_CHUNK = 1024 * 1024


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass
class _Entry:
    record: ConnectionRecord
    key: str
    state: tuple[Any, ...] | None = None


@dataclass
class JournalState:
    """What a journal says, record by record (the last state of each key, with its evidence of life)."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def apply(self, line: dict[str, Any]) -> None:
        if "seen" in line:
            seen = _time(line.get("seen"))
            for rec in self.records.values():
                if rec.get("meeting") == line.get("meeting") and rec.get("left_at") is None and seen is not None:
                    last = _time(rec.get("last_seen_at"))
                    if last is None or seen > last:
                        rec["last_seen_at"] = seen.isoformat()
        elif isinstance(line.get("key"), str):
            self.records[line["key"]] = dict(line)


class AttendanceJournal:
    def __init__(self, directory: Path, reserved_bytes: int = RESERVED_BYTES) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME
        self.reserved_bytes = reserved_bytes
        self._fd: int | None = None
        self._end = 0  # where the next line goes
        self._size = 0  # bytes of the file (reserved blocks)
        self._entries: dict[int, _Entry] = {}  # id(record) -> its key and last journaled state
        self._full_reported = False

    # -- start-up --------------------------------------------------------------------------
    def open(self) -> None:
        """Open (creating) the journal, find the end of its text and reserve its space."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._end = len(self._text())
        self.reserve()

    def reserve(self) -> bool:
        """Grow the file to its reserved size with real (zero) blocks. False if the disk has no room."""
        if self._fd is None or self._size >= self.reserved_bytes:
            return self._fd is not None
        try:
            while self._size < self.reserved_bytes:
                chunk = min(_CHUNK, self.reserved_bytes - self._size)
                os.pwrite(self._fd, b"\0" * chunk, self._size)
                self._size += chunk
            os.fsync(self._fd)
        except OSError as exc:
            self._size = os.fstat(self._fd).st_size
            log.error("cannot reserve space for the attendance journal", extra={
                "event": "attendance_journal.reserve_failed", "file": str(self.path), "reserved": self._size,
                "error": exc.strerror or str(exc)})
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _text(self) -> bytes:
        assert self._fd is not None
        data = os.pread(self._fd, max(self._size, 0), 0) if self._size else b""
        end = data.find(b"\0")
        text = data if end < 0 else data[:end]
        cut = text.rfind(b"\n")  # a line torn by a crash is not part of the journal
        return text[: cut + 1] if cut >= 0 else b""

    def read(self) -> JournalState:
        state = JournalState()
        if self._fd is None:
            return state
        for raw in self._text().splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                state.apply(line)
        return state

    def clear(self) -> None:
        """Empty the journal, keeping its reserved blocks (a NUL at its start first: empty at once)."""
        if self._fd is None:
            return
        if self._end:
            os.pwrite(self._fd, b"\0", 0)
            os.fsync(self._fd)
            os.pwrite(self._fd, b"\0" * self._end, 0)
        self._end = 0
        self._entries.clear()
        self._full_reported = False

    # -- while running ---------------------------------------------------------------------
    def failed(self, meeting_id: int, batch: Sequence[ConnectionRecord]) -> int:
        """The database refused ``batch``: journal the state of each record that changed since it was last
        journaled, and that the open ones were alive now. Returns how many lines were written."""
        if self._fd is None or not batch:
            return 0
        now = utcnow()
        lines: list[dict[str, Any]] = []
        any_open = False
        for rec in batch:
            entry = self._entries.get(id(rec))
            if entry is None or entry.record is not rec:
                entry = self._entries[id(rec)] = _Entry(rec, uuid.uuid4().hex)
            state = (rec.interval_id, rec.left_at, rec.end_reason)
            any_open = any_open or rec.left_at is None
            if state == entry.state:
                continue
            last_seen = rec.left_at or getattr(rec, "last_seen_at", None) or now
            lines.append({"key": entry.key, "meeting": rec.meeting_id, "person": rec.person_id,
                          "office": rec.office_id, "client": rec.client, "interval_id": rec.interval_id,
                          "joined_at": _iso(rec.joined_at), "last_seen_at": _iso(last_seen),
                          "left_at": _iso(rec.left_at), "end_reason": rec.end_reason})
            entry.state = state
        if any_open:
            lines.append({"seen": _iso(now), "meeting": meeting_id})
        return self._append(lines)

    def written(self, batch: Iterable[ConnectionRecord]) -> None:
        """A flush of ``batch`` succeeded: its records written in full no longer need the journal; once
        none is left, the journal is emptied."""
        if not self._entries:
            return
        for rec in batch:
            entry = self._entries.get(id(rec))
            if entry is not None and entry.record is rec and not rec.pending:
                del self._entries[id(rec)]
        if not self._entries:
            self.clear()

    def _append(self, lines: list[dict[str, Any]]) -> int:
        if not lines or self._fd is None:
            return 0
        data = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
        if self._end + len(data) > self._size:
            self.reserve()  # the reservation failed at start: try again
        if self._end + len(data) > self._size:  # only reserved blocks are written: they need no new space
            if not self._full_reported:
                log.error("the attendance journal is full; held-back attendance waits only in memory", extra={
                    "event": "attendance_journal.full", "file": str(self.path), "bytes": self._end})
                self._full_reported = True
            return 0
        try:
            os.pwrite(self._fd, data, self._end)
            os.fsync(self._fd)
        except OSError as exc:
            log.error("cannot write the attendance journal", extra={
                "event": "attendance_journal.write_failed", "file": str(self.path),
                "error": exc.strerror or str(exc)})
            return 0
        self._end += len(data)
        return len(lines)


async def replay(db: Database, journal: AttendanceJournal) -> dict[str, int]:
    """Write what the journal holds into the database (idempotent), then empty it. Run at start, before
    connections are accepted and before ``recover_crashed``. Returns counts: added, merged, unchanged."""
    state = journal.read()
    counts = {"added": 0, "merged": 0, "unchanged": 0}
    if not state.records:
        journal.clear()
        return counts
    async with db.write() as uow:
        s = uow.session
        for line in state.records.values():
            joined_at = _time(line.get("joined_at"))
            last_seen = _time(line.get("last_seen_at")) or joined_at
            left_at = _time(line.get("left_at"))
            reason = str(line.get("end_reason") or "")
            if joined_at is None or last_seen is None:
                continue
            if left_at is not None and reason not in END_REASONS:
                reason = "dropped"
            candidates = (await s.scalars(select(AttendanceInterval).where(
                AttendanceInterval.meeting_id == line.get("meeting"),
                AttendanceInterval.person_id == line.get("person"),
                AttendanceInterval.office_id == line.get("office"),
                AttendanceInterval.client == line.get("client")))).all()
            row = next((r for r in candidates if abs((r.joined_at - joined_at).total_seconds()) < 0.001), None)
            if row is None:
                s.add(AttendanceInterval(meeting_id=line["meeting"], person_id=line["person"],
                                         office_id=line["office"], client=line["client"], joined_at=joined_at,
                                         last_seen_at=left_at or last_seen, left_at=left_at, end_reason=reason))
                counts["added"] += 1
            elif row.left_at is None and (left_at is not None or last_seen > row.last_seen_at):
                if left_at is not None:
                    row.left_at, row.end_reason = left_at, reason
                row.last_seen_at = max(row.last_seen_at, left_at or last_seen)
                counts["merged"] += 1
            else:
                counts["unchanged"] += 1
        if counts["added"] or counts["merged"]:
            uow.audit("attendance.journal_replayed", actor_id=None, actor_office_id=None, address="server",
                      details=dict(counts))
    journal.clear()
    return counts
