"""The node's copy of its office: what the centre's snapshot says, written into the node's own database
(the accounts here; the meetings in provincial_nodes/replica_meetings.py).

The node signs its office's people in while the WAN is down the way a read-only domain controller
does: from replicated accounts (password hashes and roles included) of its own office only. Each
snapshot replaces the previous copy (it is a full picture, sent on every connection): accounts are
created or updated under the centre's ids, and a local account of the office that the snapshot no
longer lists is deactivated (never deleted: attendance and audit rows refer to it).

A snapshot is checked whole before anything is written: a malformed one raises :class:`SnapshotError`
and leaves the copy as it was.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from meetings.db import Database
from meetings.models import Office, Person, PersonRole, Role
from meetings.models.offices import OfficeKind

from .errors import SnapshotError
from .replica_meetings import parse_meetings, write_meetings, write_offices

SNAPSHOT_VERSION = 1
_ROLES = {r.value for r in Role}
_KINDS = {k.value for k in OfficeKind}


@dataclass(frozen=True)
class ReplicaResult:
    office_code: str
    created: int
    updated: int
    deactivated: int
    meetings: int


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise SnapshotError(f"{where}.{name} is missing or not a {getattr(kind, '__name__', kind)}")
    return value


def _text(obj: dict[str, Any], name: str, where: str, max_length: int) -> str:
    value = _field(obj, name, str, where)
    if not value or len(value) > max_length:
        raise SnapshotError(f"{where}.{name} must be 1..{max_length} characters")
    return value


def _time(obj: dict[str, Any], name: str, where: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(_field(obj, name, str, where))
    except ValueError as exc:
        raise SnapshotError(f"{where}.{name} is not an ISO time") from exc
    if value.tzinfo is None:
        raise SnapshotError(f"{where}.{name} has no time zone")
    return value


@dataclass(frozen=True)
class _Account:
    id: int
    username: str
    full_name: str
    password_hash: str
    active: bool
    password_changed_at: dt.datetime
    roles: frozenset[Role]


def parse_snapshot(snapshot: object) -> tuple[dict[str, Any], list[_Account]]:
    """The snapshot's office and accounts, checked; SnapshotError for anything else (its meetings:
    provincial_nodes/replica_meetings.py)."""
    if not isinstance(snapshot, dict):
        raise SnapshotError("a snapshot is an object")
    if snapshot.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError(f"snapshot version {snapshot.get('version')!r} is not {SNAPSHOT_VERSION}")
    office = _field(snapshot, "office", dict, "snapshot")
    office_id = _field(office, "id", int, "office")
    parsed_office = {"id": office_id, "code": _text(office, "code", "office", 32),
                     "kind": _text(office, "kind", "office", 32), "name_en": _text(office, "name_en", "office", 200),
                     "name_km": _text(office, "name_km", "office", 200), "active": _field(office, "active", bool, "office")}
    if parsed_office["kind"] not in _KINDS:
        raise SnapshotError(f"office.kind {parsed_office['kind']!r} is not one of {sorted(_KINDS)}")
    accounts: list[_Account] = []
    seen_ids: set[int] = set()
    seen_names: set[str] = set()
    for index, person in enumerate(_field(snapshot, "people", list, "snapshot")):
        where = f"people[{index}]"
        if not isinstance(person, dict):
            raise SnapshotError(f"{where} is not an object")
        if _field(person, "office_id", int, where) != office_id:
            raise SnapshotError(f"{where} belongs to another office: a node keeps its own office's people only")
        roles = _field(person, "roles", list, where)
        if not all(isinstance(r, str) and r in _ROLES for r in roles):
            raise SnapshotError(f"{where}.roles must be some of {sorted(_ROLES)}")
        account = _Account(id=_field(person, "id", int, where), username=_text(person, "username", where, 64),
                           full_name=_text(person, "full_name", where, 200),
                           password_hash=_text(person, "password_hash", where, 255),
                           active=_field(person, "active", bool, where),
                           password_changed_at=_time(person, "password_changed_at", where),
                           roles=frozenset(Role(r) for r in roles))
        if account.id in seen_ids or account.username in seen_names:
            raise SnapshotError(f"{where} repeats an id or username")
        seen_ids.add(account.id)
        seen_names.add(account.username)
        accounts.append(account)
    return parsed_office, accounts


async def apply_snapshot(db: Database, snapshot: object) -> ReplicaResult:
    """Make the node's copy of its office what ``snapshot`` says (see the module docstring)."""
    office_data, accounts = parse_snapshot(snapshot)
    assert isinstance(snapshot, dict)
    account_ids = {a.id for a in accounts}
    offices, meetings = parse_meetings(snapshot, office_data["id"], account_ids)
    created = updated = deactivated = 0
    async with db.write() as uow:
        session = uow.session
        office = await session.get(Office, office_data["id"])
        if office is None:
            clash = await session.scalar(select(Office).where(Office.code == office_data["code"]))
            if clash is not None:
                raise SnapshotError(f"this node's database has office {office_data['code']} under another id")
            office = Office(id=office_data["id"])
            session.add(office)
        office.code, office.name_en, office.name_km = office_data["code"], office_data["name_en"], office_data["name_km"]
        office.kind, office.active = OfficeKind(office_data["kind"]), office_data["active"]
        await session.flush()
        local = {p.id: p for p in (await session.execute(
            select(Person).where(Person.office_id == office.id))).scalars().all()}
        for account in accounts:
            person = local.pop(account.id, None)
            if person is None:
                person = await session.get(Person, account.id)
                if person is not None and person.office_id != office.id:
                    raise SnapshotError(f"account {account.id} belongs to another office in this node's database")
            clash = await session.scalar(select(Person.id).where(Person.username == account.username,
                                                                 Person.id != account.id))
            if clash is not None:
                raise SnapshotError(f"username {account.username!r} is another account's in this node's database")
            roles = [PersonRole(person_id=account.id, role=role) for role in sorted(account.roles)]
            if person is None:
                person = Person(id=account.id, office_id=office.id, created_at=account.password_changed_at,
                                role_rows=roles)
                session.add(person)
                created += 1
            else:
                updated += 1
                if person.roles != account.roles:
                    person.role_rows = roles
            person.username, person.full_name = account.username, account.full_name
            person.password_hash, person.active = account.password_hash, account.active
            person.password_changed_at = account.password_changed_at
            await session.flush()
        for person in local.values():
            if person.active:
                person.active = False
                deactivated += 1
        await session.flush()
        await write_offices(session, offices)
        await write_meetings(session, meetings, office.id, account_ids)
    return ReplicaResult(office_data["code"], created, updated, deactivated, len(meetings))
