"""The recording archive's search: one search document per meeting (``RecordingSearch``: its title, agenda
item titles, decision texts, office names in both languages and the names of those who held the floor),
rebuilt when one of its recordings closes and by ``reindex``. It is matched by the database's own full-text
search: PostgreSQL's ``tsvector`` ('simple' configuration, GIN index) with ``plainto_tsquery``; on SQLite
an FTS5 table (external content over ``recording_search.document``) created, and rebuilt from the
documents, when it is found missing. Visibility is part of the SQL: a briefing's recordings never reach a
caller who is not invited to it, in rows or in counts.

:class:`RecordingSearchIndex` is a part of :class:`meetings.services.recordings.RecordingService`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, and_, column, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.db import Database
from meetings.errors import NotFound, ValidationFailed
from meetings.models import AgendaItem, Decision, FloorGrant, Invitation, Meeting, MeetingKind, Office, Person, Role
from meetings.models.base import utcnow
from meetings.models.recordings import Recording, RecordingSearch
from meetings.policy import Action, Caller, Principal, require
from meetings.services.common import clean_int, meeting_access
from meetings.services.meetings import MeetingService

MAX_QUERY = 200
MAX_TERMS = 16
MAX_LIMIT = 200
FTS_TABLE = "recording_search_fts"


@dataclass(frozen=True)
class SearchPage:
    """Recordings found (newest first) and how many the caller may see in all, ``limit`` aside."""

    total: int
    recordings: list[Recording]


def visible_meetings(principal: Principal) -> ColumnElement[bool]:
    """SQL for the meetings ``principal`` may see: the same rule as ``Action.VIEW_MEETING`` (invited,
    host office, or a cabinet session for the secretariat), so nothing is filtered afterwards."""
    invited = select(Invitation.meeting_id).where(
        or_(Invitation.office_id == principal.office_id, Invitation.person_id == principal.person_id))
    conditions: list[ColumnElement[bool]] = [Meeting.host_office_id == principal.office_id,
                                             Meeting.id.in_(invited)]
    if principal.has(Role.SECRETARIAT):
        conditions.append(Meeting.kind == MeetingKind.CABINET_SESSION)
    return or_(*conditions)


def fts5_query(query: str) -> str:
    """A user's words as an FTS5 query that cannot be read as syntax: each word a quoted phrase (quotes
    doubled), all required. Words with no letter or digit are dropped; '' when none is left."""
    terms = [word for word in query.split() if any(ch.isalnum() for ch in word)][:MAX_TERMS]
    return " ".join('"' + word.replace('"', '""') + '"' for word in terms)


def aware(value: object, field: str) -> dt.datetime:
    """A date and time with a zone, in UTC (ValidationFailed naming ``field`` otherwise)."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValidationFailed(f"{field} must be a date and time with a time zone", field=field)
    return value.astimezone(dt.UTC)


class RecordingSearchIndex:
    """Indexing and searching the archive (see the module docstring)."""

    db: Database
    meetings: MeetingService
    _fts_ready: bool

    async def reindex(self, caller: Caller, meeting_id: object) -> None:
        """Rebuild a meeting's search document (after its decisions or minutes change): the server, or
        whoever manages the meeting. Derived data: not audited."""
        mid = clean_int(meeting_id, "meeting_id")
        if not caller.system:
            meeting = await self.meetings.get(caller, mid)
            require(caller, Action.MODERATE_MEETING, meeting_access(meeting))
        async with self.db.write() as uow:
            if await uow.session.get(Meeting, mid) is None:
                raise NotFound("no such meeting")
            await self._index(uow.session, mid)

    async def _ensure_fts(self, session: AsyncSession) -> None:
        """SQLite: the FTS5 index over the search documents, created and filled when missing."""
        if self._fts_ready:
            return
        exists = await session.scalar(text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": FTS_TABLE})
        if not exists:
            await session.execute(text(
                f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(document, content='recording_search', "
                "content_rowid='meeting_id', tokenize='unicode61 remove_diacritics 2')"))
            await session.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"))
        self._fts_ready = True

    async def _index(self, session: AsyncSession, meeting_id: int) -> None:
        document = await _document(session, meeting_id)
        now = utcnow()
        sqlite = self.db.is_sqlite
        if sqlite:
            await self._ensure_fts(session)
        old = await session.get(RecordingSearch, meeting_id)
        if old is None:
            session.add(RecordingSearch(meeting_id=meeting_id, document=document, updated_at=now))
        else:
            if sqlite:  # external content: the old words leave the index before the row changes
                await session.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, document) "
                                           "VALUES ('delete', :id, :doc)"), {"id": meeting_id, "doc": old.document})
            old.document, old.updated_at = document, now
        await session.flush()
        if sqlite:
            await session.execute(text(f"INSERT INTO {FTS_TABLE}(rowid, document) VALUES (:id, :doc)"),
                                  {"id": meeting_id, "doc": document})
        else:
            await session.execute(update(RecordingSearch).where(RecordingSearch.meeting_id == meeting_id)
                                  .values(tsv=func.to_tsvector("simple", RecordingSearch.document)))

    async def search(self, caller: Caller, query: object, *, date_from: dt.datetime | None = None,
                     date_to: dt.datetime | None = None, meeting_id: object = None, office_id: object = None,
                     limit: object = 50) -> SearchPage:
        """Recordings of the meetings whose title, agenda items, decisions, offices or speakers match every
        word of ``query``, among those the caller may see; newest first. ``date_from``/``date_to`` bound the
        recording's start; ``office_id``: meetings that office hosted or was invited to."""
        principal = require(caller, Action.SEARCH_RECORDINGS)
        if not isinstance(query, str) or not query.strip():
            raise ValidationFailed("type a word to search for", field="query")
        if len(query) > MAX_QUERY:
            raise ValidationFailed(f"the search is at most {MAX_QUERY} characters", field="query")
        if CONTROL.search(query):
            raise ValidationFailed("the search contains control characters", field="query")
        size = clean_int(limit, "limit", 1, MAX_LIMIT)
        conditions: list[ColumnElement[bool]] = []
        if principal is not None:
            conditions.append(visible_meetings(principal))
        if date_from is not None:
            conditions.append(Recording.started_at >= aware(date_from, "date_from"))
        if date_to is not None:
            conditions.append(Recording.started_at <= aware(date_to, "date_to"))
        if meeting_id is not None:
            conditions.append(Recording.meeting_id == clean_int(meeting_id, "meeting_id"))
        if office_id is not None:
            office = clean_int(office_id, "office_id")
            conditions.append(or_(Meeting.host_office_id == office, Meeting.id.in_(
                select(Invitation.meeting_id).where(Invitation.office_id == office))))
        if self.db.is_sqlite:
            match = fts5_query(query)
            if not match:
                return SearchPage(0, [])
            if not self._fts_ready:
                async with self.db.write() as uow:
                    await self._ensure_fts(uow.session)
            matching = text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q").bindparams(q=match)
            conditions.append(Recording.meeting_id.in_(matching.columns(column("rowid", Integer))))
        else:
            conditions.append(Recording.meeting_id.in_(select(RecordingSearch.meeting_id).where(
                RecordingSearch.tsv.op("@@")(func.plainto_tsquery("simple", query)))))
        where = and_(*conditions)
        base = select(Recording).join(Meeting, Meeting.id == Recording.meeting_id).where(where)
        async with self.db.read() as session:
            total = await session.scalar(select(func.count()).select_from(
                select(Recording.id).join(Meeting, Meeting.id == Recording.meeting_id).where(where).subquery()))
            rows = (await session.scalars(base.order_by(Recording.started_at.desc(), Recording.id.desc())
                                          .limit(size))).all()
        return SearchPage(int(total or 0), list(rows))


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


async def _document(session: AsyncSession, meeting_id: int) -> str:
    """The words a meeting is found by: its title and description, agenda item titles, decision texts, the
    names (English and Khmer) of its host, invited and presenting offices, and who held the floor."""
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        return ""
    parts: list[str] = [meeting.title, meeting.description]
    parts += (await session.scalars(select(AgendaItem.title).where(AgendaItem.meeting_id == meeting_id)
                                    .order_by(AgendaItem.position))).all()
    parts += (await session.scalars(select(Decision.text).where(Decision.meeting_id == meeting_id)
                                    .order_by(Decision.item_id))).all()
    office_ids = (select(Invitation.office_id).where(Invitation.meeting_id == meeting_id)
                  .union(select(AgendaItem.presenter_office_id).where(AgendaItem.meeting_id == meeting_id),
                         select(FloorGrant.office_id).where(FloorGrant.meeting_id == meeting_id)))
    offices = (await session.execute(select(Office.name_en, Office.name_km).where(
        or_(Office.id == meeting.host_office_id, Office.id.in_(office_ids))).order_by(Office.id))).all()
    for name_en, name_km in offices:
        parts += [name_en, name_km]
    speakers = await session.scalars(select(Person.full_name).where(
        Person.id.in_(select(FloorGrant.person_id).where(FloorGrant.meeting_id == meeting_id))).order_by(Person.id))
    parts += speakers.all()
    return "\n".join(p for p in parts if p)
