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
from meetings.services.nodes import SNAPSHOT_VERSION

from .checks import get, text, time
from .errors import SnapshotError
from .replica_meetings import parse_meetings, parse_office, write_meetings, write_offices

_ROLES = {r.value for r in Role}


@dataclass(frozen=True)
class ReplicaResult:
    office_code: str
    created: int
    updated: int
    deactivated: int
    meetings: int


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
    parsed_office = parse_office(snapshot.get("office"), "office")
    office_id = parsed_office["id"]
    accounts: list[_Account] = []
    seen_ids: set[int] = set()
    seen_names: set[str] = set()
    for index, person in enumerate(get(snapshot, "people", list, "snapshot")):
        where = f"people[{index}]"
        if not isinstance(person, dict):
            raise SnapshotError(f"{where} is not an object")
        if get(person, "office_id", int, where) != office_id:
            raise SnapshotError(f"{where} belongs to another office: a node keeps its own office's people only")
        roles = get(person, "roles", list, where)
        if not all(isinstance(r, str) and r in _ROLES for r in roles):
            raise SnapshotError(f"{where}.roles must be some of {sorted(_ROLES)}")
        account = _Account(id=get(person, "id", int, where), username=text(person, "username", where, 64),
                           full_name=text(person, "full_name", where, 200),
                           password_hash=text(person, "password_hash", where, 255),
                           active=get(person, "active", bool, where),
                           password_changed_at=time(person, "password_changed_at", where),
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
        await write_offices(session, [office_data, *offices])
        office = await session.get(Office, office_data["id"])
        assert office is not None
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
        await write_meetings(session, meetings, office.id, account_ids)
    return ReplicaResult(office_data["code"], created, updated, deactivated, len(meetings))
