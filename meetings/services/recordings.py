"""The recording archive's rows: start, pause, resume, close and fail a recording; its files; who may see,
play, download, export and delete it; legal hold, retention and quota; and the archive's search.

The files are recordings/'s (this module never touches the disk): ``delete`` returns the names of the
files the caller must remove; ``record_access`` is what the web layer calls before it serves a file.

Restarts: at most one recording of a meeting is active (recording or paused) at a time, and ``start``
returns it instead of starting another. A server that restarts mid-session finds its previous recording
still active: the recorder finalises it (``close``, or ``fail`` when it cannot) and then calls ``start``,
which begins a new recording of the same session. A meeting can thus have several recordings, in order.

Search (meetings/services/recording_search.py): one search document per meeting (``RecordingSearch``: its title, agenda item titles, decision
texts, office names in both languages and the names of those who held the floor), rebuilt when one of its
recordings closes and by ``reindex``. It is matched by the database's own full-text search: PostgreSQL's
``tsvector`` ('simple' configuration, GIN index) with ``plainto_tsquery``; on SQLite an FTS5 table
(external content over ``recording_search.document``) that this service creates, and rebuilds from the
documents, when it finds it missing. Visibility is part of the SQL: a briefing's recordings never reach
a caller who is not invited to it, in rows or in counts.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.config import MeetingsConfig
from meetings.db import Database, UnitOfWork
from meetings.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meetings.models import Meeting, MeetingState, Office, Person, ProvincialNode
from meetings.models.base import utcnow
from meetings.models.recordings import (ACTIVE_STATES, FILE_NAME_RE, FileKind, FileMedia, Recording, RecordingFile,
                                        RecordingPause, RecordingState)
from meetings.policy import Action, Caller, require
from meetings.services.common import clean_int, clean_long_text, meeting_access, record, require_visible
from meetings.services.meetings import MeetingService
from meetings.services.recording_gaps import RecordingGapBook, end_open_gaps
from meetings.services.recording_record import session_record
from meetings.services.recording_search import (MAX_LIMIT, RecordingSearchIndex, SearchPage, aware as _aware,
                                                fts5_query, visible_meetings)

MAX_REASON = 500
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: A recording's key: the random URL-safe token its folder is named by (never a path, never hidden).
RECORDING_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ACCESS_KINDS = ("download", "play", "export", "manifest", "bag")
MISSING = "no such recording"


def _parse_utc(value: object) -> dt.datetime | None:
    """An ISO time from a manifest (``...Z``), or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _count(value: object, field: str) -> int:
    return clean_int(value, field, low=0, high=2**62)


class RecordingService(RecordingSearchIndex, RecordingGapBook):
    def __init__(self, db: Database, meetings: MeetingService, config: MeetingsConfig | None = None) -> None:
        self.db = db
        self.meetings = meetings
        self.config = config or MeetingsConfig()
        self._fts_ready = False

    # ----------------------------------------------------------------------------------------- reading

    async def _load(self, recording_id: object) -> Recording:
        rid = clean_int(recording_id, "recording_id")
        async with self.db.read() as session:
            recording = await session.get(Recording, rid)
        if recording is None:
            raise NotFound(MISSING)
        return recording

    async def _visible(self, caller: Caller, recording_id: object) -> tuple[Recording, Meeting]:
        """The recording and its meeting, if the caller may see the meeting; else NotFound (never
        Forbidden: a briefing's recordings do not exist for those not invited to it)."""
        recording = await self._load(recording_id)
        async with self.db.read() as session:
            meeting = await session.get(Meeting, recording.meeting_id)
        assert meeting is not None  # RESTRICT: a recording's meeting cannot be deleted
        access = meeting_access(meeting)
        require_visible(caller, access, MISSING)
        require(caller, Action.VIEW_RECORDINGS, access)
        return recording, meeting

    async def get(self, caller: Caller, recording_id: object) -> Recording:
        recording, _ = await self._visible(caller, recording_id)
        return recording

    async def list_for_meeting(self, caller: Caller, meeting_id: object) -> list[Recording]:
        """A meeting's recordings in order, tombstones included (state deleted, no files)."""
        meeting = await self.meetings.get(caller, clean_int(meeting_id, "meeting_id"))
        require(caller, Action.VIEW_RECORDINGS, meeting_access(meeting))
        async with self.db.read() as session:
            return list((await session.scalars(select(Recording).where(Recording.meeting_id == meeting.id)
                                               .order_by(Recording.started_at, Recording.id))).all())

    async def list_visible(self, caller: Caller, *, limit: object = 50, offset: object = 0) -> list[Recording]:
        """Every recording of the meetings the caller may see, newest first."""
        principal = require(caller, Action.SEARCH_RECORDINGS)
        query = select(Recording).join(Meeting, Meeting.id == Recording.meeting_id)
        if principal is not None:
            query = query.where(visible_meetings(principal))
        query = (query.order_by(Recording.started_at.desc(), Recording.id.desc())
                 .limit(clean_int(limit, "limit", 1, MAX_LIMIT)).offset(clean_int(offset, "offset", 0)))
        async with self.db.read() as session:
            return list((await session.scalars(query)).all())

    # ------------------------------------------------------------------------------------- the lifecycle

    async def start(self, caller: Caller, meeting_id: object) -> Recording:
        """Start recording an open session (a moderator, or the server as the session opens). The
        meeting's active recording, if there is one, is returned instead of a second one."""
        meeting = await self.meetings.get(caller, clean_int(meeting_id, "meeting_id"))
        require(caller, Action.CONTROL_RECORDING, meeting_access(meeting))
        if not meeting.record_sessions:
            raise Conflict("this meeting's sessions are not recorded")
        async with self.db.write() as uow:
            s = uow.session
            # Lock the meeting row (PostgreSQL; SQLite's writers are serialised already): one active recording.
            state = await s.scalar(select(Meeting.state).where(Meeting.id == meeting.id).with_for_update())
            if state is not MeetingState.OPEN:
                raise Conflict("the session is not open")
            active = await s.scalar(select(Recording).where(Recording.meeting_id == meeting.id,
                                                            Recording.state.in_(ACTIVE_STATES)))
            if active is not None:
                return active
            recording = Recording(meeting_id=meeting.id, key=secrets.token_urlsafe(24), state=RecordingState.RECORDING,
                                  started_at=utcnow(), started_by_id=caller.actor_id,
                                  retention_class=self.config.retention_class_for(meeting.kind.value))
            s.add(recording)
            await s.flush()
            record(uow, caller, "recording.start", target_type="recording", target_id=recording.id,
                   details={"meeting_id": meeting.id, "key": recording.key,
                            "retention_class": recording.retention_class})
        return await self._load(recording.id)

    async def _controlled(self, caller: Caller, recording_id: object) -> Recording:
        recording, meeting = await self._visible(caller, recording_id)
        require(caller, Action.CONTROL_RECORDING, meeting_access(meeting))
        return recording

    async def pause(self, caller: Caller, recording_id: object, reason: object = "") -> Recording:
        """Pause for an in-camera item: nothing is recorded until resumed; the pause is kept (manifest)."""
        recording = await self._controlled(caller, recording_id)
        why = clean_long_text(reason, "reason", max_length=MAX_REASON)
        now = utcnow()
        async with self.db.write() as uow:
            done = await uow.session.execute(
                update(Recording).where(Recording.id == recording.id, Recording.state == RecordingState.RECORDING)
                .values(state=RecordingState.PAUSED))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("the recording is not running")
            uow.session.add(RecordingPause(recording_id=recording.id, started_at=now, reason=why,
                                           by_id=caller.actor_id))
            record(uow, caller, "recording.pause", target_type="recording", target_id=recording.id,
                   details={"meeting_id": recording.meeting_id, "reason": why})
        return await self._load(recording.id)

    async def resume(self, caller: Caller, recording_id: object) -> Recording:
        recording = await self._controlled(caller, recording_id)
        now = utcnow()
        async with self.db.write() as uow:
            done = await uow.session.execute(
                update(Recording).where(Recording.id == recording.id, Recording.state == RecordingState.PAUSED)
                .values(state=RecordingState.RECORDING))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("the recording is not paused")
            await _end_pauses(uow.session, recording.id, now)
            record(uow, caller, "recording.resume", target_type="recording", target_id=recording.id,
                   details={"meeting_id": recording.meeting_id})
        return await self._load(recording.id)

    async def close(self, caller: Caller, recording_id: object, *, manifest_sha256: object, size_bytes: object,
                    duration_ms: object) -> Recording:
        """Finalised: the manifest's SHA-256 enters the audit chain; the meeting's search document is rebuilt
        and the retention clock starts. The recorder (the server) or a moderator closes; a failed recording
        may still be closed once the recorder has finalised what it had."""
        recording = await self._system_or(caller, recording_id, Action.CONTROL_RECORDING)
        if not isinstance(manifest_sha256, str) or not _SHA256.match(manifest_sha256):
            raise ValidationFailed("manifest_sha256 must be 64 lowercase hex digits", field="manifest_sha256")
        size = _count(size_bytes, "size_bytes")
        duration = _count(duration_ms, "duration_ms")
        now = utcnow()
        period = self.config.retention_classes().get(recording.retention_class)
        async with self.db.write() as uow:
            s = uow.session
            done = await s.execute(
                update(Recording).where(Recording.id == recording.id,
                                        Recording.state.in_((*ACTIVE_STATES, RecordingState.FAILED)))
                .values(state=RecordingState.CLOSED, ended_at=now, manifest_sha256=manifest_sha256,
                        size_bytes=size, duration_ms=duration, keep_until=now + period if period else None))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(f"the recording is {recording.state.value}")
            await _end_pauses(s, recording.id, now)
            await end_open_gaps(s, recording.id, now)
            await self._index(s, recording.meeting_id)
            record(uow, caller, "recording.close", target_type="recording", target_id=recording.id,
                   details={"meeting_id": recording.meeting_id, "key": recording.key,
                            "manifest_sha256": manifest_sha256, "size_bytes": size, "duration_ms": duration})
        return await self._load(recording.id)

    async def alarm(self, caller: Caller, recording_id: object, alarm: object) -> Recording:
        """The recorder's last write error ("disk full"), or '' once writing works again; the recording and
        the session go on. Audited when it changes."""
        recording = await self._system_only(caller, recording_id)
        text_ = clean_long_text(alarm, "alarm", max_length=MAX_REASON)
        if text_ == recording.alarm:
            return recording
        async with self.db.write() as uow:
            await uow.session.execute(update(Recording).where(Recording.id == recording.id).values(alarm=text_))
            record(uow, caller, "recording.alarm", target_type="recording", target_id=recording.id,
                   details={"meeting_id": recording.meeting_id, "alarm": text_, "state": recording.state.value})
        return await self._load(recording.id)

    async def fail(self, caller: Caller, recording_id: object, alarm: object) -> Recording:
        """The recorder gave up: state failed, the alarm kept. The session itself is untouched; the files
        written so far stay (``close`` may still finalise them, ``start`` begins a new recording)."""
        recording = await self._system_only(caller, recording_id)
        text_ = clean_long_text(alarm, "alarm", min_length=1, max_length=MAX_REASON)
        now = utcnow()
        async with self.db.write() as uow:
            done = await uow.session.execute(
                update(Recording).where(Recording.id == recording.id, Recording.state.in_(ACTIVE_STATES))
                .values(state=RecordingState.FAILED, alarm=text_, ended_at=now))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(f"the recording is {recording.state.value}")
            await _end_pauses(uow.session, recording.id, now)
            await end_open_gaps(uow.session, recording.id, now)
            record(uow, caller, "recording.alarm", target_type="recording", target_id=recording.id,
                   details={"meeting_id": recording.meeting_id, "alarm": text_, "state": "failed"})
        return await self._load(recording.id)

    async def _system_only(self, caller: Caller, recording_id: object) -> Recording:
        if not caller.system:
            raise PermissionDenied("only the server's recorder does this")
        return await self._load(recording_id)

    async def _system_or(self, caller: Caller, recording_id: object, action: Action) -> Recording:
        if caller.system:
            return await self._load(recording_id)
        recording, meeting = await self._visible(caller, recording_id)
        require(caller, action, meeting_access(meeting))
        return recording

    # ------------------------------------------------------------------------------------------ files

    async def add_file(self, caller: Caller, recording_id: object, *, name: object, kind: object, media: object,
                       person_id: object = None, office_id: object = None,
                       started_at: dt.datetime | None = None) -> RecordingFile:
        """Register a file the recorder created in the recording's folder (the server only; audited)."""
        recording = await self._system_only(caller, recording_id)
        if not isinstance(name, str) or not FILE_NAME_RE.match(name) or name in (".", ".."):
            raise ValidationFailed("name must be 1-100 letters, digits, '.', '_' or '-'", field="name")
        try:
            file_kind, file_media = FileKind(str(kind)), FileMedia(str(media))
        except ValueError:
            raise ValidationFailed("kind must be track, proceedings or manifest; media audio, video or av",
                                   field="kind") from None
        person = None if person_id is None else clean_int(person_id, "person_id")
        office = None if office_id is None else clean_int(office_id, "office_id")
        start = None if started_at is None else _aware(started_at, "started_at")
        async with self.db.write() as uow:
            s = uow.session
            state = await s.scalar(select(Recording.state).where(Recording.id == recording.id))
            if state in (RecordingState.CLOSED, RecordingState.DELETED):
                raise Conflict(f"the recording is {state.value if state else 'gone'}")
            if await s.scalar(select(RecordingFile.id).where(RecordingFile.recording_id == recording.id,
                                                             RecordingFile.name == name)) is not None:
                raise Conflict(f"the recording already has a file {name}")
            row = RecordingFile(recording_id=recording.id, name=name, kind=file_kind.value, media=file_media.value,
                                person_id=person, office_id=office, started_at=start)
            s.add(row)
            await s.flush()
            record(uow, caller, "recording.file", target_type="recording", target_id=recording.id,
                   details={"name": name, "kind": file_kind.value, "media": file_media.value,
                            "person_id": person, "office_id": office})
        return row

    async def update_file(self, caller: Caller, recording_id: object, name: object, *,
                          ended_at: dt.datetime | None = None, duration_ms: object = None, size_bytes: object = None,
                          sha256: object = None, frames: object = None, gap_ms: object = None) -> RecordingFile:
        """The recorder's progress on a file (the server only; not audited: the manifest's hash at
        ``close`` is the record of what the files finally are)."""
        recording = await self._system_only(caller, recording_id)
        values: dict[str, Any] = {}
        if ended_at is not None:
            values["ended_at"] = _aware(ended_at, "ended_at")
        for field_name, value in (("duration_ms", duration_ms), ("size_bytes", size_bytes), ("frames", frames)):
            if value is not None:
                values[field_name] = _count(value, field_name)
        if gap_ms is not None:
            values["gap_ms"] = clean_int(gap_ms, "gap_ms", low=0)
        if sha256 is not None:
            if not isinstance(sha256, str) or not _SHA256.match(sha256):
                raise ValidationFailed("sha256 must be 64 lowercase hex digits", field="sha256")
            values["sha256"] = sha256
        async with self.db.write() as uow:
            s = uow.session
            state = await s.scalar(select(Recording.state).where(Recording.id == recording.id))
            if state is RecordingState.DELETED:
                raise Conflict("the recording is deleted")
            row = await s.scalar(select(RecordingFile).where(RecordingFile.recording_id == recording.id,
                                                             RecordingFile.name == name))
            if row is None:
                raise NotFound("no such file in this recording")
            for key, value in values.items():
                setattr(row, key, value)
            await s.flush()
        return row

    async def session_record(self, caller: Caller, recording_id: object,
                             origin: dt.datetime | None = None) -> dict[str, Any]:
        """The session's record for the manifest (chapters, speakers, decisions, votes, participants) in
        ms from ``origin`` (the recorder's start; default the row's), up to now or the row's end."""
        recording = await self._system_or(caller, recording_id, Action.VIEW_RECORDINGS)
        start = origin or recording.started_at
        async with self.db.read() as session:
            return await session_record(session, recording, start, recording.ended_at or utcnow())

    async def deleted_by_names(self, recordings: Sequence[Recording]) -> dict[int, str]:
        """Full names of the people who deleted these (visible) recordings: the tombstone says who."""
        ids = {r.deleted_by_id for r in recordings if r.deleted_by_id is not None}
        if not ids:
            return {}
        async with self.db.read() as session:
            rows = (await session.execute(select(Person.id, Person.full_name).where(Person.id.in_(ids)))).all()
            return {person_id: name for person_id, name in rows}

    async def register_files(self, caller: Caller, recording_id: object, manifest: dict[str, Any]) -> None:
        """Rows for the files a manifest lists (present ones), with their sizes and SHA-256 (the server
        only; once, as the recording is sealed)."""
        recording = await self._system_only(caller, recording_id)
        origin = _parse_utc(manifest.get("started_utc")) or recording.started_at
        known = {f.name for f in recording.files}
        for entry in manifest.get("files", []):
            if not entry.get("present") or entry.get("name") in known:
                continue
            name = entry["name"]
            first, last = int(entry.get("first_ms", 0)), int(entry.get("last_ms", 0))
            await self.add_file(caller, recording.id, name=name, kind=entry.get("kind", "track"),
                                media=entry.get("media", "av"), person_id=entry.get("person_id"),
                                office_id=entry.get("office_id"), started_at=origin + dt.timedelta(milliseconds=first))
            await self.update_file(caller, recording.id, name, ended_at=origin + dt.timedelta(milliseconds=last),
                                   duration_ms=max(0, last - first), size_bytes=int(entry.get("size", 0)),
                                   sha256=entry.get("sha256"), frames=sum(entry.get("frames", {}).values()))

    async def add_from_node(self, caller: Caller, node: ProvincialNode, meeting_id: object, *, key: object,
                            manifest: dict[str, Any], manifest_sha256: object, size_bytes: object) -> Recording:
        """File a recording that a provincial node made of ``meeting_id`` and uploaded: a closed recording
        of that meeting, with its files' rows from the manifest, seen exactly with the meeting's visibility.
        The server only: the web layer has authenticated the node, checked that it may carry the meeting
        (``NodeService.node_meeting``) and the uploaded files against the manifest. The retention clock
        starts at the recording's end; the manifest's SHA-256 enters the audit chain with
        ``recording.node_upload``, which names the node. Idempotent: the same key, meeting and seal again
        return the recording filed before; a key the archive holds for anything else is a Conflict."""
        if not caller.system:
            raise PermissionDenied("only the server files a node's recording")
        mid = clean_int(meeting_id, "meeting_id")
        if not isinstance(key, str) or not RECORDING_KEY_RE.match(key):
            raise ValidationFailed("key must be 16-64 letters, digits, '_' or '-'", field="key")
        if not isinstance(manifest_sha256, str) or not _SHA256.match(manifest_sha256):
            raise ValidationFailed("manifest_sha256 must be 64 lowercase hex digits", field="manifest_sha256")
        size = _count(size_bytes, "size_bytes")
        duration = _count(manifest.get("duration_ms", 0), "duration_ms")
        started = _parse_utc(manifest.get("started_utc")) or utcnow()
        ended = started + dt.timedelta(milliseconds=duration)
        entries = [_uploaded_file(entry, started) for entry in manifest.get("files", [])
                   if isinstance(entry, dict) and entry.get("present")]
        if len({f.name for f in entries}) != len(entries):
            raise ValidationFailed("the manifest lists a file twice", field="manifest")
        async with self.db.write() as uow:
            s = uow.session
            meeting = await s.get(Meeting, mid)
            if meeting is None:
                raise NotFound("no such meeting")
            existing = await s.scalar(select(Recording).where(Recording.key == key))
            if existing is not None:  # filed before: nothing changes
                if (existing.meeting_id, existing.manifest_sha256, existing.state) != (
                        mid, manifest_sha256, RecordingState.CLOSED):
                    raise Conflict("the archive already holds a recording with this key", field="key")
                filed = existing.id
            else:
                filed = await self._file_upload(uow, caller, node, meeting, key, manifest_sha256, entries,
                                                started=started, ended=ended, size=size, duration=duration)
        return await self._load(filed)

    async def _file_upload(self, uow: UnitOfWork, caller: Caller, node: ProvincialNode, meeting: Meeting, key: str,
                           manifest_sha256: str, entries: list[RecordingFile], *, started: dt.datetime,
                           ended: dt.datetime, size: int, duration: int) -> int:
        s = uow.session
        # Whose tracks: ids the centre knows (a node's are the centre's); any other is dropped, not trusted.
        people = {f.person_id for f in entries if f.person_id is not None}
        offices = {f.office_id for f in entries if f.office_id is not None}
        known_people = set((await s.scalars(select(Person.id).where(Person.id.in_(people or {-1})))).all())
        known_offices = set((await s.scalars(select(Office.id).where(Office.id.in_(offices or {-1})))).all())
        retention_class = self.config.retention_class_for(meeting.kind.value)
        period = self.config.retention_classes().get(retention_class)
        recording = Recording(meeting_id=meeting.id, key=key, state=RecordingState.CLOSED, started_at=started,
                              ended_at=ended, started_by_id=None, manifest_sha256=manifest_sha256,
                              size_bytes=size, duration_ms=duration, retention_class=retention_class,
                              keep_until=ended + period if period else None)
        s.add(recording)
        await s.flush()
        for row in entries:
            row.recording_id = recording.id
            row.person_id = row.person_id if row.person_id in known_people else None
            row.office_id = row.office_id if row.office_id in known_offices else None
            s.add(row)
        await s.flush()
        filled = await self._fill_gaps(uow, caller, node, recording, entries)
        await self._index(s, meeting.id)
        uow.audit("recording.node_upload", actor_id=None, actor_office_id=node.office_id, address=caller.address,
                  target_type="recording", target_id=recording.id,
                  details={"meeting_id": meeting.id, "key": key, "manifest_sha256": manifest_sha256,
                           "size_bytes": size, "duration_ms": duration, "files": len(entries),
                           "node_id": node.id, "node": node.name, "office": node.office.code,
                           "credential_prefix": node.credential_prefix, "gaps_filled": filled})
        return recording.id

    async def sealed(self, caller: Caller, meeting_id: object = None) -> list[Recording]:
        """Closed recordings (of one meeting, or all) with their manifest seals: what
        ``cabinet recordings verify`` checks. The command line (system caller) only."""
        if not caller.system:
            raise PermissionDenied("only the server's operator verifies the whole archive")
        query = select(Recording).where(Recording.state == RecordingState.CLOSED).order_by(Recording.id)
        if meeting_id is not None:
            query = query.where(Recording.meeting_id == clean_int(meeting_id, "meeting_id"))
        async with self.db.read() as session:
            return list((await session.scalars(query)).all())

    async def record_access(self, caller: Caller, recording_id: object, what: object,
                            file_name: object = None) -> Recording:
        """The web layer serves a recording's file (``what``: download, play or export): checked and audited.
        ``file_name`` None: the whole recording (an export)."""
        recording, _ = await self._visible(caller, recording_id)
        if what not in ACCESS_KINDS:
            raise ValidationFailed("what must be download, play or export", field="what")
        if recording.state is RecordingState.DELETED:
            raise Conflict("the recording was deleted")
        if file_name is not None:
            if not isinstance(file_name, str) or file_name not in {f.name for f in recording.files}:
                raise NotFound("no such file in this recording")
        async with self.db.write() as uow:
            record(uow, caller, f"recording.{what}", target_type="recording", target_id=recording.id,
                   details={"meeting_id": recording.meeting_id, "file": file_name})
        return recording

    # ------------------------------------------------------------------------ deletion and retention

    async def delete(self, caller: Caller, recording_id: object, reason: object) -> list[str]:
        """Delete a recording's files: the secretariat, with a reason; refused under legal hold and while
        recording. The row stays as a tombstone (state deleted, who, when, why); its file rows go, and
        their names and hashes go into the audit event. Returns the file names the caller must remove."""
        recording = await self._system_or(caller, recording_id, Action.DELETE_RECORDING)
        why = clean_long_text(reason, "reason", min_length=1, max_length=MAX_REASON)
        now = utcnow()
        async with self.db.write() as uow:
            s = uow.session
            done = await s.execute(
                update(Recording).where(Recording.id == recording.id, Recording.legal_hold.is_(False),
                                        Recording.state.in_((RecordingState.CLOSED, RecordingState.FAILED)))
                .values(state=RecordingState.DELETED, deleted_at=now, deleted_by_id=caller.actor_id,
                        delete_reason=why, size_bytes=0, alarm=""))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                current = await s.get(Recording, recording.id)
                assert current is not None
                if current.legal_hold and current.state is not RecordingState.DELETED:
                    raise Conflict("the recording is under legal hold")
                raise Conflict(f"the recording is {current.state.value}")
            files = (await s.execute(select(RecordingFile.name, RecordingFile.sha256, RecordingFile.size_bytes)
                                     .where(RecordingFile.recording_id == recording.id)
                                     .order_by(RecordingFile.name))).all()
            await s.execute(delete(RecordingFile).where(RecordingFile.recording_id == recording.id))
            record(uow, caller, "recording.delete", target_type="recording", target_id=recording.id,
                   details={"meeting_id": recording.meeting_id, "key": recording.key, "reason": why,
                            "manifest_sha256": recording.manifest_sha256, "size_bytes": recording.size_bytes,
                            "files": [{"name": n, "sha256": h, "size_bytes": b} for n, h, b in files]})
        return [name for name, _, _ in files]

    async def set_legal_hold(self, caller: Caller, recording_id: object, on: object, reason: object) -> Recording:
        recording = await self._system_or(caller, recording_id, Action.MANAGE_RETENTION)
        if not isinstance(on, bool):
            raise ValidationFailed("on must be true or false", field="on")
        why = clean_long_text(reason, "reason", min_length=1, max_length=MAX_REASON)
        if recording.state is RecordingState.DELETED:
            raise Conflict("the recording was deleted")
        if recording.legal_hold == on:
            return recording
        async with self.db.write() as uow:
            await uow.session.execute(update(Recording).where(Recording.id == recording.id).values(legal_hold=on))
            record(uow, caller, "recording.legal_hold", target_type="recording", target_id=recording.id,
                   details={"meeting_id": recording.meeting_id, "on": on, "reason": why})
        return await self._load(recording.id)

    async def set_retention(self, caller: Caller, recording_id: object, retention_class: object) -> Recording:
        recording = await self._system_or(caller, recording_id, Action.MANAGE_RETENTION)
        classes = self.config.retention_classes()
        if not isinstance(retention_class, str) or retention_class not in classes:
            raise ValidationFailed("retention_class must be one of: " + ", ".join(classes), field="retention_class")
        if recording.state is RecordingState.DELETED:
            raise Conflict("the recording was deleted")
        period = classes[retention_class]
        keep_until = recording.ended_at + period if period and recording.ended_at and \
            recording.state is RecordingState.CLOSED else None
        async with self.db.write() as uow:
            await uow.session.execute(update(Recording).where(Recording.id == recording.id)
                                      .values(retention_class=retention_class, keep_until=keep_until))
            record(uow, caller, "recording.retention", target_type="recording", target_id=recording.id,
                   details={"meeting_id": recording.meeting_id, "old": recording.retention_class,
                            "new": retention_class, "keep_until": keep_until.isoformat() if keep_until else None})
        return await self._load(recording.id)

    async def retention_due(self, now: dt.datetime) -> list[Recording]:
        """Closed recordings past their keep_until and not on legal hold (the server deletes them with
        ``delete(Caller.cli(), id, reason)``)."""
        moment = _aware(now, "now")
        async with self.db.read() as session:
            return list((await session.scalars(
                select(Recording).where(Recording.state == RecordingState.CLOSED, Recording.legal_hold.is_(False),
                                        Recording.keep_until.is_not(None), Recording.keep_until <= moment)
                .order_by(Recording.keep_until, Recording.id))).all())

    async def usage(self) -> tuple[int, int]:
        """(bytes the archive holds, the quota in bytes; 0: none). Closed recordings count their final
        size; recordings still written (or failed) count their files so far."""
        async with self.db.read() as session:
            closed = await session.scalar(select(func.coalesce(func.sum(Recording.size_bytes), 0))
                                          .where(Recording.state == RecordingState.CLOSED))
            open_ = await session.scalar(
                select(func.coalesce(func.sum(RecordingFile.size_bytes), 0))
                .join(Recording, Recording.id == RecordingFile.recording_id)
                .where(Recording.state.in_((*ACTIVE_STATES, RecordingState.FAILED))))
        return int(closed or 0) + int(open_ or 0), self.config.recording_quota_bytes

    async def quota_level(self) -> str:
        """'ok', 'warning' (at ``recording_quota_warn_percent`` of the quota) or 'full'."""
        used, quota = await self.usage()
        if quota <= 0:
            return "ok"
        if used >= quota:
            return "full"
        return "warning" if used * 100 >= quota * self.config.recording_quota_warn_percent else "ok"



def _uploaded_file(entry: dict[str, Any], origin: dt.datetime) -> RecordingFile:
    """The row of one file of an uploaded recording's manifest (each field checked: it comes from a node)."""
    name = entry.get("name")
    if not isinstance(name, str) or not FILE_NAME_RE.match(name) or name.startswith("."):
        raise ValidationFailed("a file name in the manifest is not 1-100 letters, digits, '.', '_' or '-'",
                               field="manifest")
    try:
        kind, media = FileKind(str(entry.get("kind", "track"))), FileMedia(str(entry.get("media", "av")))
    except ValueError:
        raise ValidationFailed(f"{name}: kind must be track or proceedings, media audio, video or av",
                               field="manifest") from None
    sha = entry.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise ValidationFailed(f"{name}: sha256 must be 64 lowercase hex digits", field="manifest")
    # -1: a file with no frames (recordings.manifest.read_content)
    first, last = (max(0, clean_int(entry.get(k, 0), f"{name}.{k}", low=-1, high=2**62))
                   for k in ("first_ms", "last_ms"))
    frames = entry.get("frames") if isinstance(entry.get("frames"), dict) else {}
    person, office = entry.get("person_id"), entry.get("office_id")
    return RecordingFile(name=name, kind=kind.value, media=media.value,
                         person_id=person if isinstance(person, int) and not isinstance(person, bool) else None,
                         office_id=office if isinstance(office, int) and not isinstance(office, bool) else None,
                         started_at=origin + dt.timedelta(milliseconds=first),
                         ended_at=origin + dt.timedelta(milliseconds=last), duration_ms=max(0, last - first),
                         size_bytes=_count(entry.get("size", 0), f"{name}.size"), sha256=sha,
                         frames=sum(_count(v, f"{name}.frames") for v in frames.values()))


async def _end_pauses(session: AsyncSession, recording_id: int, now: dt.datetime) -> None:
    await session.execute(update(RecordingPause).where(RecordingPause.recording_id == recording_id,
                                                       RecordingPause.ended_at.is_(None)).values(ended_at=now))



__all__: Sequence[str] = ("RECORDING_KEY_RE", "RecordingService", "SearchPage", "fts5_query", "visible_meetings")
