"""People: accounts, offices and roles, administered by the secretariat (or the operator's CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from sqlalchemy import select, update

from meetings.config import MeetingsConfig
from meetings.db import Database, UnitOfWork
from meetings.errors import Conflict, NotFound, ValidationFailed
from meetings.models import LoginSession, Office, Person, PersonRole, Role
from meetings.models.base import utcnow
from meetings.passwords import hash_password, password_problem
from meetings.policy import Action, Caller, require
from meetings.services.common import clean_int, clean_text, clean_username, record


def clean_roles(values: object) -> frozenset[Role]:
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    if not isinstance(values, Iterable):
        raise ValidationFailed("roles must be a list", field="roles")
    roles: set[Role] = set()
    for value in values:
        try:
            roles.add(Role(str(value).strip().lower()))
        except ValueError:
            raise ValidationFailed(
                f"unknown role {value!r}; roles are {', '.join(r.value for r in Role)}", field="roles"
            ) from None
    if not roles:
        raise ValidationFailed("at least one role is required", field="roles")
    return frozenset(roles)


async def end_sessions(uow: UnitOfWork, person_id: int, reason: str) -> None:
    await uow.session.execute(
        update(LoginSession)
        .where(LoginSession.person_id == person_id, LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )


class PeopleService:
    def __init__(self, db: Database, config: MeetingsConfig) -> None:
        self.db = db
        self.config = config

    def _check_password(self, password: object, username: str) -> str:
        if not isinstance(password, str):
            raise ValidationFailed("password is required", field="password")
        problem = password_problem(password, min_length=self.config.password_min_length, username=username)
        if problem:
            raise ValidationFailed(f"password {problem}", field="password")
        return password

    async def list(self, caller: Caller) -> Sequence[Person]:
        require(caller, Action.VIEW_PEOPLE)
        async with self.db.read() as session:
            return (await session.execute(select(Person).order_by(Person.username))).scalars().unique().all()

    async def get(self, caller: Caller, person_id: int) -> Person:
        require(caller, Action.VIEW_PEOPLE)
        async with self.db.read() as session:
            person = await session.get(Person, person_id)
        if person is None:
            raise NotFound("no such person")
        return person

    async def find(self, caller: Caller, username: str) -> Person:
        require(caller, Action.VIEW_PEOPLE)
        async with self.db.read() as session:
            person = await session.scalar(select(Person).where(Person.username == username.strip().lower()))
        if person is None:
            raise NotFound(f"no account named {username!r}")
        return person

    async def create(self, caller: Caller, *, username: object, full_name: object, office_id: object,
                     roles: object, password: object) -> Person:
        require(caller, Action.MANAGE_PEOPLE)
        name = clean_username(username)
        full = clean_text(full_name, "full_name", max_length=200)
        role_set = clean_roles(roles)
        secret = self._check_password(password, name)
        password_hash = await asyncio.to_thread(hash_password, secret)
        async with self.db.write() as uow:
            office = await self._active_office(uow, office_id)
            if await uow.session.scalar(select(Person.id).where(Person.username == name)):
                raise Conflict(f"the username {name} is taken", field="username")
            person = Person(username=name, full_name=full, office_id=office.id, password_hash=password_hash,
                            active=True, role_rows=[PersonRole(role=r) for r in sorted(role_set)])
            uow.session.add(person)
            await uow.session.flush()
            record(uow, caller, "person.create", target_type="person", target_id=person.id,
                   details={"username": name, "office": office.code, "roles": sorted(r.value for r in role_set)})
        return await self._reload(person.id)

    async def _active_office(self, uow: UnitOfWork, office_id: object) -> Office:
        office = await uow.session.get(Office, clean_int(office_id, "office_id"))
        if office is None or not office.active:
            raise ValidationFailed("no such active office", field="office_id")
        return office

    async def _reload(self, person_id: int) -> Person:
        async with self.db.read() as session:
            person = await session.get(Person, person_id)
        assert person is not None
        return person

    async def update(self, caller: Caller, person_id: int, *, full_name: object = None, office_id: object = None,
                     roles: object = None, active: object = None) -> Person:
        me = require(caller, Action.MANAGE_PEOPLE)
        async with self.db.write() as uow:
            person = await uow.session.get(Person, person_id)
            if person is None:
                raise NotFound("no such person")
            changes: dict[str, list[object]] = {}
            if full_name is not None:
                value = clean_text(full_name, "full_name", max_length=200)
                if value != person.full_name:
                    changes["full_name"] = [person.full_name, value]
                    person.full_name = value
            if office_id is not None:
                office = await self._active_office(uow, office_id)
                if office.id != person.office_id:
                    changes["office_id"] = [person.office_id, office.id]
                    person.office_id = office.id
            if roles is not None:
                new_roles = clean_roles(roles)
                if me is not None and me.person_id == person.id and Role.SECRETARIAT not in new_roles:
                    raise ValidationFailed("you cannot remove your own secretariat role", field="roles")
                if new_roles != person.roles:
                    changes["roles"] = [sorted(r.value for r in person.roles), sorted(r.value for r in new_roles)]
                    person.role_rows = [PersonRole(role=r) for r in sorted(new_roles)]
            if active is not None:
                if not isinstance(active, bool):
                    raise ValidationFailed("active must be true or false", field="active")
                if me is not None and me.person_id == person.id and not active:
                    raise ValidationFailed("you cannot disable your own account", field="active")
                if active != person.active:
                    changes["active"] = [person.active, active]
                    person.active = active
                    if not active:
                        await end_sessions(uow, person.id, "disabled")
            if changes:
                record(uow, caller, "person.update", target_type="person", target_id=person.id,
                       details={"username": person.username, "changes": changes})
        return await self._reload(person_id)

    async def set_password(self, caller: Caller, person_id: int, password: object) -> None:
        require(caller, Action.MANAGE_PEOPLE)
        async with self.db.read() as session:
            person = await session.get(Person, person_id)
        if person is None:
            raise NotFound("no such person")
        secret = self._check_password(password, person.username)
        password_hash = await asyncio.to_thread(hash_password, secret)
        async with self.db.write() as uow:
            await uow.session.execute(
                update(Person).where(Person.id == person_id).values(password_hash=password_hash,
                                                                   password_changed_at=utcnow())
            )
            await end_sessions(uow, person_id, "password_changed")
            record(uow, caller, "person.password_set", target_type="person", target_id=person_id,
                   details={"username": person.username})

    async def count(self) -> int:
        """How many accounts exist (for start-up decisions; no caller, reveals nothing)."""
        from sqlalchemy import func

        async with self.db.read() as session:
            return int(await session.scalar(select(func.count(Person.id))) or 0)
