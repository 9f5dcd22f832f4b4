"""The meetings part of a node's copy: the meetings its office hosts or is invited to, their agenda,
the office's own invitations, and the directory entries (code, names) of the other offices they name.

Written under the centre's ids. A meeting's creator is usually someone of another office, whose account
a node must not hold: it is stood in for by an inactive account ``centre-<id>`` that cannot sign in
(no usable password hash) and says nothing of the person. A meeting the snapshot no longer lists loses
the office's invitations (the office was uninvited: its people no longer see it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.db import Database
from meetings.models import AgendaItem, Invitation, Meeting, MeetingKind, MeetingState, Office, Person
from meetings.models.offices import OfficeKind

from .checks import get, text, time
from .errors import SnapshotError

#: Not an argon2 hash: verify_password() refuses every password against it.
UNUSABLE_PASSWORD = "!"
_KINDS = {k.value for k in MeetingKind}
_STATES = {s.value for s in MeetingState}
_OFFICE_KINDS = {k.value for k in OfficeKind}


def parse_office(obj: object, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise SnapshotError(f"{where} is not an object")
    office = {"id": get(obj, "id", int, where), "code": text(obj, "code", where, 32),
              "kind": text(obj, "kind", where, 32), "name_en": text(obj, "name_en", where, 200),
              "name_km": text(obj, "name_km", where, 200), "active": get(obj, "active", bool, where)}
    if office["kind"] not in _OFFICE_KINDS:
        raise SnapshotError(f"{where}.kind {office['kind']!r} is not one of {sorted(_OFFICE_KINDS)}")
    return office


@dataclass(frozen=True)
class MeetingCopy:
    fields: dict[str, Any]
    agenda: list[dict[str, Any]]
    invitations: list[dict[str, Any]]


def parse_meetings(snapshot: dict[str, Any], office_id: int, account_ids: set[int]) -> tuple[
        list[dict[str, Any]], list[MeetingCopy]]:
    """The snapshot's other offices and meetings, checked (see the module docstring)."""
    offices = [parse_office(o, f"offices[{i}]") for i, o in enumerate(get(snapshot, "offices", list, "snapshot"))]
    known_offices = {office_id} | {o["id"] for o in offices}
    copies: list[MeetingCopy] = []
    for index, raw in enumerate(get(snapshot, "meetings", list, "snapshot")):
        where = f"meetings[{index}]"
        if not isinstance(raw, dict):
            raise SnapshotError(f"{where} is not an object")
        fields = {
            "id": get(raw, "id", int, where), "title": text(raw, "title", where, 200),
            "kind": MeetingKind(_choice(raw, "kind", _KINDS, where)),
            "state": MeetingState(_choice(raw, "state", _STATES, where)),
            "host_office_id": get(raw, "host_office_id", int, where),
            "created_by_id": get(raw, "created_by_id", int, where),
            "starts_at": time(raw, "starts_at", where), "ends_at": time(raw, "ends_at", where),
            "opened_at": time(raw, "opened_at", where, optional=True),
            "closed_at": time(raw, "closed_at", where, optional=True),
            "description": text(raw, "description", where, 20_000, empty=True),
            "locked": get(raw, "locked", bool, where), "lobby_enabled": get(raw, "lobby_enabled", bool, where),
            "record_sessions": get(raw, "record_sessions", bool, where),
            "quorum_percent": get(raw, "quorum_percent", int, where),
            "grace_seconds": get(raw, "grace_seconds", int, where), "sequence": get(raw, "sequence", int, where),
        }
        if fields["host_office_id"] not in known_offices:
            raise SnapshotError(f"{where}.host_office_id names an office the snapshot does not describe")
        agenda = []
        for i, item in enumerate(get(raw, "agenda", list, where)):
            at = f"{where}.agenda[{i}]"
            if not isinstance(item, dict):
                raise SnapshotError(f"{at} is not an object")
            presenter = get(item, "presenter_office_id", int, at, optional=True)
            if presenter is not None and presenter not in known_offices:
                raise SnapshotError(f"{at}.presenter_office_id names an office the snapshot does not describe")
            agenda.append({"id": get(item, "id", int, at), "position": get(item, "position", int, at),
                           "title": text(item, "title", at, 300), "presenter_office_id": presenter,
                           "planned_minutes": get(item, "planned_minutes", int, at)})
        invitations = []
        for i, invitation in enumerate(get(raw, "invitations", list, where)):
            at = f"{where}.invitations[{i}]"
            if not isinstance(invitation, dict):
                raise SnapshotError(f"{at} is not an object")
            office = get(invitation, "office_id", int, at, optional=True)
            person = get(invitation, "person_id", int, at, optional=True)
            if (office is None) == (person is None):
                raise SnapshotError(f"{at} invites an office or a person")
            if (office is not None and office != office_id) or (person is not None and person not in account_ids):
                raise SnapshotError(f"{at} is another office's invitation: a node keeps its own office's only")
            invitations.append({"id": get(invitation, "id", int, at), "office_id": office, "person_id": person})
        copies.append(MeetingCopy(fields, agenda, invitations))
    return offices, copies


def _choice(raw: dict[str, Any], name: str, allowed: set[str], where: str) -> str:
    value = get(raw, name, str, where)
    if value not in allowed:
        raise SnapshotError(f"{where}.{name} {value!r} is not one of {sorted(allowed)}")
    return str(value)


async def write_offices(session: AsyncSession, offices: list[dict[str, Any]]) -> None:
    """The directory entries of the offices the meetings name (never their people)."""
    for data in offices:
        office = await session.get(Office, data["id"])
        if office is None:
            if await session.scalar(select(Office.id).where(Office.code == data["code"])) is not None:
                raise SnapshotError(f"this node's database has office {data['code']} under another id")
            office = Office(id=data["id"])
            session.add(office)
        office.code, office.name_en, office.name_km = data["code"], data["name_en"], data["name_km"]
        office.kind, office.active = OfficeKind(data["kind"]), data["active"]
    await session.flush()


async def write_meetings(session: AsyncSession, copies: list[MeetingCopy], office_id: int,
                         account_ids: set[int]) -> None:
    for copy in copies:
        await _stand_in(session, copy.fields["created_by_id"], copy.fields["host_office_id"])
        meeting = await session.get(Meeting, copy.fields["id"])
        if meeting is None:
            meeting = Meeting(**copy.fields)
            session.add(meeting)
        else:
            fields = copy.fields
            if fields["state"].is_behind(meeting.state):
                # This node ran the session further than the centre's record says yet (it opened or closed
                # it during a cut; the pipe's tables bring the centre up to date): a session never goes back.
                fields = {k: v for k, v in fields.items() if k not in ("state", "opened_at", "closed_at")}
            for name, value in fields.items():
                setattr(meeting, name, value)
        await session.flush()
        await _write_rows(session, AgendaItem, copy.fields["id"], copy.agenda, AgendaItem.meeting_id)
        await _write_rows(session, Invitation, copy.fields["id"], copy.invitations, Invitation.meeting_id)
    # meetings the office left: its invitations go, so its people no longer see them
    listed = [c.fields["id"] for c in copies]
    mine = or_(Invitation.office_id == office_id, Invitation.person_id.in_(account_ids or {-1}))
    await session.execute(delete(Invitation).where(mine, Invitation.meeting_id.not_in(listed or [-1])))


async def _stand_in(session: AsyncSession, person_id: int, office_id: int) -> None:
    if await session.get(Person, person_id) is None:
        session.add(Person(id=person_id, username=f"centre-{person_id}", full_name="(an account of the centre)",
                           office_id=office_id, password_hash=UNUSABLE_PASSWORD, active=False))
        await session.flush()


async def _write_rows(session: AsyncSession, model: Any, meeting_id: int, rows: list[dict[str, Any]],
                      column: Any) -> None:
    """Make the meeting's rows of ``model`` exactly ``rows``: untouched when they already are, else
    replaced whole (rows updated in place could meet a unique position or office on the way)."""
    existing = list((await session.execute(select(model).where(column == meeting_id))).scalars())
    names = rows[0].keys() if rows else ()
    current = sorted(({name: getattr(r, name) for name in names} for r in existing), key=lambda d: d["id"])
    if (current == sorted(rows, key=lambda d: d["id"])) if rows else not existing:
        return
    for row in existing:
        await session.delete(row)
    await session.flush()
    for data in rows:
        if await session.get(model, data["id"]) is not None:
            raise SnapshotError(f"{model.__tablename__} {data['id']} belongs to another meeting here")
        session.add(model(meeting_id=meeting_id, **data))
    await session.flush()


async def follow_session(db: Database, meeting_id: int, state: MeetingState, opened_at: dt.datetime | None,
                         closed_at: dt.datetime | None) -> bool:
    """The host's server opened or closed ``meeting_id``'s session (its pipe table says so): the copy says so
    at once, not at the next snapshot (which says the same); never back (a table from before a step the copy
    has taken). Whether the row changed."""
    earlier = [s for s in MeetingState if s is not state and not state.is_behind(s)]
    async with db.write() as uow:
        done = await uow.session.execute(update(Meeting).where(Meeting.id == meeting_id, Meeting.state.in_(earlier))
                                         .values(state=state, opened_at=opened_at, closed_at=closed_at))
    return bool(done.rowcount)  # type: ignore[attr-defined]
