"""The minutes of a meeting: drafted from the record, edited by the secretariat, approved and locked.

Approval stores the SHA-256 of the canonical JSON body and writes it into the audit trail; from then
on this service refuses every change and the database triggers of migration 0003 refuse any UPDATE
or DELETE of the row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meetings import audit
from meetings import minutes_draft as md
from meetings.db import Database
from meetings.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meetings.models import AuditEvent, FloorGrant, Meeting, Office, Person
from meetings.models.base import utcnow
from meetings.models.decisions import Decision, Minutes, MinutesState, Vote
from meetings.models.record import ExcusedAbsence
from meetings.models.recordings import Recording, RecordingState
from meetings.policy import Action, Caller, decide, require
from meetings.services.common import clean_long_text, meeting_access, record, record_access
from meetings.services.meetings import MeetingService
from meetings.services.register import load_register

MAX_SUMMARY = 10_000
MAX_NOTE = 20_000
APPROVE_ACTION = "minutes.approve"


@dataclass(frozen=True)
class Verification:
    stored: str
    computed: str
    audited: str | None
    audit_seq: int | None

    @property
    def ok(self) -> bool:
        return bool(self.stored) and self.stored == self.computed == self.audited


async def gather(session: AsyncSession, meeting: Meeting) -> md.Record:
    """Everything the draft needs, read from the record of the session."""
    live = await load_register(session, meeting)
    grants = (await session.scalars(select(FloorGrant).where(FloorGrant.meeting_id == meeting.id))).all()
    decisions = {d.item_id: d for d in (await session.scalars(
        select(Decision).where(Decision.meeting_id == meeting.id))).all()}
    votes = (await session.scalars(select(Vote).where(Vote.meeting_id == meeting.id))).all()
    excused = (await session.scalars(select(ExcusedAbsence).where(ExcusedAbsence.meeting_id == meeting.id))).all()
    sealed = (await session.scalars(select(Recording).where(
        Recording.meeting_id == meeting.id, Recording.state == RecordingState.CLOSED).order_by(Recording.id))).all()
    person_ids = {g.person_id for g in grants} | set(live.register.people) | {e.person_id for e in excused
                                                                              if e.person_id}
    people = {p.id: p.full_name for p in (await session.scalars(
        select(Person).where(Person.id.in_(person_ids)))).all()} if person_ids else {}
    office_ids = set(live.site_ids) | set(live.register.sites) | {g.office_id for g in grants} | {
        b.office_id for v in votes for b in v.ballots} | {i.presenter_office_id for i in meeting.agenda
                                                          if i.presenter_office_id} | {meeting.host_office_id}
    offices = {o.id: md.OfficeInfo(o.id, o.code, o.name_en, o.name_km) for o in (await session.scalars(
        select(Office).where(Office.id.in_(office_ids)))).all()}
    items = []
    for item in meeting.agenda:
        def in_item(g: FloorGrant, item: Any = item) -> bool:
            if g.item_id is not None:
                return bool(g.item_id == item.id)
            return item.started_at is not None and g.granted_at >= item.started_at and (
                item.ended_at is None or g.granted_at < item.ended_at)
        d = decisions.get(item.id)
        items.append(md.ItemInfo(
            id=item.id, position=item.position, title=item.title, presenter_office_id=item.presenter_office_id,
            started_at=item.started_at, ended_at=item.ended_at,
            speeches=tuple(md.Speech(people.get(g.person_id, f"#{g.person_id}"), g.office_id, g.granted_at,
                                     g.ended_at) for g in grants if in_item(g)),
            decision=md.DecisionInfo(d.outcome.value, d.text, d.en_bloc, d.vote_id) if d else None,
            votes=tuple(md.VoteInfo(v.id, v.question, v.opened_at, v.closed_at, v.sites_present, v.sites_invited,
                                    v.quorum_required, v.quorum_met,
                                    tuple(md.BallotInfo(b.office_id, b.choice.value) for b in v.ballots))
                        for v in votes if v.item_id == item.id),
        ))
    return md.Record(
        meeting_id=meeting.id, title=meeting.title, kind=meeting.kind.value, host_office_id=meeting.host_office_id,
        starts_at=meeting.starts_at, ends_at=meeting.ends_at, opened_at=meeting.opened_at,
        closed_at=meeting.closed_at, items=tuple(items), register=live.register, quorum=live.quorum,
        site_ids=live.site_ids, offices=offices, people=people,
        excused_offices={e.office_id: e.reason for e in excused if e.office_id is not None},
        excused_people={e.person_id: e.reason for e in excused if e.person_id is not None},
        recordings=tuple((r.id, r.started_at, r.ended_at, r.duration_ms, r.manifest_sha256 or "") for r in sealed),
    )


def body_of(minutes: Minutes) -> dict[str, Any]:
    return json.loads(minutes.body)  # type: ignore[no-any-return]


class MinutesService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def _load(self, session: AsyncSession, meeting_id: int) -> Minutes | None:
        return await session.scalar(select(Minutes).where(Minutes.meeting_id == meeting_id))

    async def get(self, caller: Caller, meeting_id: int) -> Minutes | None:
        """The minutes, or None when there are none yet; a draft only for those who run the session."""
        meeting = await self.meetings.get(caller, meeting_id)
        access = meeting_access(meeting)
        async with self.db.read() as session:
            minutes = await self._load(session, meeting_id)
        if minutes is None or minutes.state is MinutesState.APPROVED:
            return minutes
        if caller.system or decide(caller.principal, Action.VIEW_MINUTES_DRAFT, access):
            return minutes
        return None

    def may_see_drafts(self, caller: Caller, meeting: Meeting) -> bool:
        return caller.system or decide(caller.principal, Action.VIEW_MINUTES_DRAFT, meeting_access(meeting)).allowed

    async def may_view_register(self, caller: Caller, meeting: Meeting) -> bool:
        """Whether the caller may read the attendance register now (for links on pages)."""
        return caller.system or decide(caller.principal, Action.VIEW_REGISTER,
                                       await record_access(self.db, meeting)).allowed

    async def register(self, caller: Caller, meeting_id: int) -> md.Record:
        """The record of a meeting, for the attendance register's export: the same rule as the register
        itself (VIEW_REGISTER)."""
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.VIEW_REGISTER, await record_access(self.db, meeting))
        async with self.db.read() as session:
            return await gather(session, meeting)

    async def draft(self, caller: Caller, meeting_id: int) -> Minutes:
        """Draft the minutes from the record, or redraft a draft (keeping the edited text)."""
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.EDIT_MINUTES, meeting_access(meeting))
        async with self.db.write() as uow:
            session = uow.session
            fresh_meeting = await session.get(Meeting, meeting_id)
            assert fresh_meeting is not None
            fresh = md.draft(await gather(session, fresh_meeting))
            minutes = await self._load(session, meeting_id)
            if minutes is None:
                minutes = Minutes(meeting_id=meeting_id, state=MinutesState.DRAFT, body=md.canonical(fresh),
                                  version=1, drafted_at=utcnow(), edited_by_id=caller.actor_id, edited_at=utcnow())
                session.add(minutes)
                action = "minutes.draft"
            else:
                if minutes.state is MinutesState.APPROVED:
                    raise Conflict("the minutes are approved and locked")
                minutes.body = md.canonical(md.merge_edits(fresh, body_of(minutes)))
                minutes.version += 1
                minutes.drafted_at = minutes.edited_at = utcnow()
                minutes.edited_by_id = caller.actor_id
                action = "minutes.redraft"
            await session.flush()
            record(uow, caller, action, target_type="meeting", target_id=meeting_id,
                   details={"minutes_id": minutes.id, "version": minutes.version})
        return minutes

    async def edit(self, caller: Caller, meeting_id: int, *, version: object, summaries: object = None,
                   note: object = None) -> Minutes:
        """Change the free text: per-item summaries ({item_id: text}) and the general note."""
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.EDIT_MINUTES, meeting_access(meeting))
        if summaries is not None and not isinstance(summaries, Mapping):
            raise ValidationFailed("summaries must map item ids to text", field="summaries")
        clean: dict[int, str] = {}
        for key, value in (summaries or {}).items():
            try:
                item_id = int(key)
            except (TypeError, ValueError):
                raise ValidationFailed("summaries must map item ids to text", field="summaries") from None
            clean[item_id] = clean_long_text(value, f"summary {item_id}", max_length=MAX_SUMMARY)
        new_note = None if note is None else clean_long_text(note, "note", max_length=MAX_NOTE)
        async with self.db.write() as uow:
            minutes = await self._editable(uow.session, meeting_id, version)
            body = body_of(minutes)
            known = {i["id"] for i in body["items"]}
            if set(clean) - known:
                raise ValidationFailed("no such agenda item in these minutes", field="summaries")
            changed: dict[str, Any] = {}
            for item in body["items"]:
                if item["id"] in clean and clean[item["id"]] != item.get("summary", ""):
                    changed[f"item {item['id']}"] = {"old": item.get("summary", ""), "new": clean[item["id"]]}
                    item["summary"] = clean[item["id"]]
            if new_note is not None and new_note != body.get("note", ""):
                changed["note"] = {"old": body.get("note", ""), "new": new_note}
                body["note"] = new_note
            if not changed:
                return minutes
            minutes.body = md.canonical(body)
            minutes.version += 1
            minutes.edited_by_id, minutes.edited_at = caller.actor_id, utcnow()
            await uow.session.flush()
            record(uow, caller, "minutes.edit", target_type="meeting", target_id=meeting_id,
                   details={"minutes_id": minutes.id, "version": minutes.version, "changes": changed})
        return minutes

    async def _editable(self, session: AsyncSession, meeting_id: int, version: object) -> Minutes:
        minutes = await self._load(session, meeting_id)
        if minutes is None:
            raise NotFound("draft the minutes first")
        if minutes.state is MinutesState.APPROVED:
            raise Conflict("the minutes are approved and locked")
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValidationFailed("version is required (the version you edited)", field="version")
        if version != minutes.version:
            raise Conflict(f"the minutes changed meanwhile (now version {minutes.version}); reload and edit again")
        return minutes

    async def approve(self, caller: Caller, meeting_id: int, *, version: object) -> Minutes:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.APPROVE_MINUTES, meeting_access(meeting))
        async with self.db.write() as uow:
            minutes = await self._editable(uow.session, meeting_id, version)
            if self.db.audit_trail is not None:  # read before the row changes: an approved row is locked
                head = await audit.head(uow.session)
                minutes.audit_checkpoint = self.db.audit_trail.signer.sign(head.seq, head.hash).text()
            sha = md.digest(body_of(minutes))
            minutes.state, minutes.sha256 = MinutesState.APPROVED, sha
            minutes.approved_by_id, minutes.approved_at = caller.actor_id, utcnow()
            await uow.session.flush()
            record(uow, caller, APPROVE_ACTION, target_type="meeting", target_id=meeting_id,
                   details={"minutes_id": minutes.id, "version": minutes.version, "sha256": sha})
        return minutes

    async def verify(self, caller: Caller, meeting_id: int) -> Verification:
        """Recompute the hash of approved minutes and compare it with the stored one and the audit trail."""
        minutes = await self.get(caller, meeting_id)
        if minutes is None or minutes.state is not MinutesState.APPROVED:
            raise NotFound("these minutes are not approved")
        async with self.db.read() as session:
            events = (await session.scalars(select(AuditEvent).where(
                AuditEvent.action == APPROVE_ACTION, AuditEvent.target_type == "meeting",
                AuditEvent.target_id == str(meeting_id)).order_by(AuditEvent.seq.desc()))).all()
        audited, seq = None, None
        for event in events:
            details = json.loads(event.details or "{}")
            if details.get("minutes_id") == minutes.id:
                audited, seq = details.get("sha256"), event.seq
                break
        return Verification(stored=minutes.sha256, computed=md.digest(body_of(minutes)), audited=audited,
                            audit_seq=seq)


def require_draft_viewer(caller: Caller, meeting: Meeting) -> None:
    if not (caller.system or decide(caller.principal, Action.VIEW_MINUTES_DRAFT, meeting_access(meeting))):
        raise PermissionDenied("the draft minutes are for the secretariat and the chair")
