"""Meetings, minimally: create, list what the caller may see, invite, and mint join tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select

from meetings.db import Database
from meetings.errors import NotFound, PermissionDenied, TokenInvalid, ValidationFailed
from meetings.models import Invitation, Meeting, MeetingKind, Office, OfficeKind, Person, Role
from meetings.policy import Action, Caller, MeetingAccess, Principal, decide, require
from meetings.services.common import clean_int, clean_text, meeting_access, principal_of, record, require_visible
from meetings.tokens import JoinClaims, JoinTokenSigner

MAX_DURATION = dt.timedelta(hours=24)


@dataclass(frozen=True)
class JoinGrant:
    """A verified join token, re-checked against the current database."""

    claims: JoinClaims
    principal: Principal
    meeting: MeetingAccess
    meeting_title: str
    office_code: str
    office_name_en: str
    office_name_km: str


def _parse_time(value: object, field: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationFailed(f"{field} must be an ISO 8601 date and time", field=field) from None
    else:
        raise ValidationFailed(f"{field} is required", field=field)
    if parsed.tzinfo is None:
        raise ValidationFailed(f"{field} must include a time zone offset", field=field)
    try:
        utc = parsed.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not 2000 <= utc.year <= 2200:
        raise ValidationFailed(f"{field} must be between the years 2000 and 2200", field=field)
    return utc


def _ids(values: object, field: str) -> set[int]:
    if values is None:
        return set()
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise ValidationFailed(f"{field} must be a list of ids", field=field)
    return {clean_int(value, field) for value in values}


class MeetingService:
    def __init__(self, db: Database, signer: JoinTokenSigner) -> None:
        self.db = db
        self.signer = signer

    async def create(self, caller: Caller, *, title: object, kind: object, host_office_id: object,
                     starts_at: object, ends_at: object, invited_office_ids: object = None,
                     invited_person_ids: object = None) -> Meeting:
        try:
            meeting_kind = MeetingKind(str(kind))
        except ValueError:
            raise ValidationFailed("kind must be cabinet_session or briefing", field="kind") from None
        me = require(caller, Action.CREATE_CABINET_SESSION if meeting_kind is MeetingKind.CABINET_SESSION
                     else Action.CREATE_BRIEFING)
        clean_title = clean_text(title, "title", max_length=200)
        start = _parse_time(starts_at, "starts_at")
        end = _parse_time(ends_at, "ends_at")
        if end <= start:
            raise ValidationFailed("ends_at must be after starts_at", field="ends_at")
        if end - start > MAX_DURATION:
            raise ValidationFailed("a meeting lasts at most 24 hours", field="ends_at")
        office_ids = _ids(invited_office_ids, "invited_office_ids")
        person_ids = _ids(invited_person_ids, "invited_person_ids")
        host_id = clean_int(host_office_id, "host_office_id")
        async with self.db.write() as uow:
            host = await uow.session.get(Office, host_id)
            if host is None or not host.active:
                raise ValidationFailed("no such active office", field="host_office_id")
            if meeting_kind is MeetingKind.CABINET_SESSION and host.kind is not OfficeKind.SECRETARIAT:
                raise ValidationFailed("a cabinet session is hosted by the secretariat", field="host_office_id")
            if me is not None and not me.has(Role.SECRETARIAT) and host.id != me.office_id:
                raise PermissionDenied("a commander hosts briefings for their own office only")
            await self._check_invitees(uow.session, office_ids, person_ids)
            meeting = Meeting(title=clean_title, kind=meeting_kind, host_office_id=host.id, starts_at=start,
                              ends_at=end, created_by_id=caller.actor_id if me else await self._operator_id(uow))
            meeting.invitations = [Invitation(office_id=o) for o in sorted(office_ids)] + [
                Invitation(person_id=p) for p in sorted(person_ids)
            ]
            uow.session.add(meeting)
            await uow.session.flush()
            record(uow, caller, "meeting.create", target_type="meeting", target_id=meeting.id,
                   details={"title": clean_title, "kind": meeting_kind.value, "host_office_id": host.id,
                            "starts_at": start.isoformat(), "ends_at": end.isoformat(),
                            "invited_office_ids": sorted(office_ids), "invited_person_ids": sorted(person_ids)})
        return await self._load(meeting.id)

    async def _operator_id(self, uow) -> int:  # type: ignore[no-untyped-def]
        """The CLI creates meetings on behalf of the first secretariat account."""
        from meetings.models import PersonRole

        person_id = await uow.session.scalar(
            select(PersonRole.person_id).where(PersonRole.role == Role.SECRETARIAT).order_by(PersonRole.person_id)
        )
        if person_id is None:
            raise ValidationFailed("create a secretariat account first")
        return int(person_id)

    @staticmethod
    async def _check_invitees(session, office_ids: set[int], person_ids: set[int]) -> None:  # type: ignore[no-untyped-def]
        if office_ids:
            found = set((await session.execute(
                select(Office.id).where(Office.id.in_(office_ids), Office.active.is_(True)))).scalars())
            if found != office_ids:
                raise ValidationFailed(f"unknown offices: {sorted(office_ids - found)}", field="invited_office_ids")
        if person_ids:
            found = set((await session.execute(
                select(Person.id).where(Person.id.in_(person_ids), Person.active.is_(True)))).scalars())
            if found != person_ids:
                raise ValidationFailed(f"unknown people: {sorted(person_ids - found)}", field="invited_person_ids")

    async def _load(self, meeting_id: int) -> Meeting:
        async with self.db.read() as session:
            meeting = await session.get(Meeting, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        return meeting

    async def get(self, caller: Caller, meeting_id: int) -> Meeting:
        """A meeting the caller may see. One the caller may not see does not exist for them (404)."""
        async with self.db.read() as session:
            meeting = await session.get(Meeting, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        require_visible(caller, meeting_access(meeting), "no such meeting")
        return meeting

    async def expected_people(self, caller: Caller, meeting_id: int) -> Sequence[Person]:
        """Who may turn up at a meeting: active people of the host and invited offices, and invited people.

        For those who run the live session (the moderators' console); read-only.
        """
        meeting = await self.get(caller, meeting_id)
        access = meeting_access(meeting)
        require(caller, Action.MODERATE_MEETING, access)
        office_ids = set(access.invited_office_ids) | {meeting.host_office_id}
        async with self.db.read() as session:
            query = select(Person).where(Person.active.is_(True), or_(
                Person.office_id.in_(office_ids), Person.id.in_(access.invited_person_ids)))
            return (await session.execute(query.order_by(Person.full_name))).scalars().unique().all()

    async def list_visible(self, caller: Caller) -> Sequence[Meeting]:
        principal = require(caller, Action.VIEW_OFFICES)  # any logged-in account
        async with self.db.read() as session:
            query = select(Meeting).order_by(Meeting.starts_at.desc())
            if principal is not None:
                invited = select(Invitation.meeting_id).where(
                    or_(Invitation.office_id == principal.office_id, Invitation.person_id == principal.person_id)
                )
                conditions = [Meeting.host_office_id == principal.office_id, Meeting.id.in_(invited)]
                if principal.has(Role.SECRETARIAT):
                    conditions.append(Meeting.kind == MeetingKind.CABINET_SESSION)
                query = query.where(or_(*conditions))
            meetings = (await session.execute(query)).scalars().unique().all()
        # What is still to come first (soonest first, so the next occurrence of a series leads), then the past.
        now = dt.datetime.now(dt.UTC)
        meetings = sorted((m for m in meetings if m.ends_at >= now), key=lambda m: (m.starts_at, m.id)) + [
            m for m in meetings if m.ends_at < now]
        if principal is None:
            return meetings
        # The SQL narrows the list; the policy has the last word.
        return [m for m in meetings if decide(principal, Action.VIEW_MEETING, meeting_access(m))]

    async def invite(self, caller: Caller, meeting_id: int, *, office_ids: object = None,
                     person_ids: object = None) -> Meeting:
        meeting = await self.get(caller, meeting_id)
        require(caller, Action.MANAGE_MEETING, meeting_access(meeting))
        new_offices = _ids(office_ids, "office_ids")
        new_people = _ids(person_ids, "person_ids")
        async with self.db.write() as uow:
            await self._check_invitees(uow.session, new_offices, new_people)
            current = meeting_access(meeting)
            added_offices = sorted(new_offices - current.invited_office_ids)
            added_people = sorted(new_people - current.invited_person_ids)
            for office_id in added_offices:
                uow.session.add(Invitation(meeting_id=meeting.id, office_id=office_id))
            for person_id in added_people:
                uow.session.add(Invitation(meeting_id=meeting.id, person_id=person_id))
            if added_offices or added_people:
                record(uow, caller, "meeting.invite", target_type="meeting", target_id=meeting.id,
                       details={"office_ids": added_offices, "person_ids": added_people})
        return await self._load(meeting.id)

    async def mint_join_token(self, caller: Caller, meeting_id: int) -> tuple[str, JoinClaims]:
        meeting = await self.get(caller, meeting_id)
        principal = require(caller, Action.JOIN_MEETING, meeting_access(meeting))
        if principal is None:
            raise PermissionDenied("the operator cannot join meetings")
        token, claims = self.signer.mint(meeting_id=meeting.id, person_id=principal.person_id,
                                         office_id=principal.office_id,
                                         roles=tuple(r.value for r in principal.roles))
        async with self.db.write() as uow:
            record(uow, caller, "meeting.join_token", target_type="meeting", target_id=meeting.id,
                   details={"token_id": claims.token_id, "expires_at": claims.expires_at})
        return token, claims

    async def verify_join_token(self, token: object) -> JoinGrant:
        """Check a join token's signature and expiry, then that the person and invitation still hold."""
        claims = self.signer.verify(token)
        async with self.db.read() as session:
            person = await session.get(Person, claims.person_id)
            meeting = await session.get(Meeting, claims.meeting_id)
        if person is None or not person.active:
            raise TokenInvalid("the account is not active")
        if meeting is None:
            raise TokenInvalid("no such meeting")
        principal = principal_of(person)
        access = meeting_access(meeting)
        decision = decide(principal, Action.JOIN_MEETING, access)
        if not decision:
            raise TokenInvalid(decision.reason)
        return JoinGrant(claims=claims, principal=principal, meeting=access, meeting_title=meeting.title,
                         office_code=person.office.code, office_name_en=person.office.name_en,
                         office_name_km=person.office.name_km)
