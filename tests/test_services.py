"""Domain services on both backends: validation, permissions, visibility and join tokens."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from meetings import demo
from meetings.errors import NotFound, PermissionDenied, TokenInvalid, ValidationFailed
from meetings.models import Role
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.common import principal_of

CLI = Caller.cli()


async def caller_for(services: Services, username: str) -> Caller:
    person = await services.people.find(CLI, username)
    return Caller(principal_of(person), "127.0.0.1")


@pytest.fixture
async def loaded(services: Services) -> Services:
    await demo.load(services, now=dt.datetime(2026, 11, 22, tzinfo=dt.UTC))
    return services


async def test_demo_data_has_every_office_and_one_account_per_role(loaded: Services) -> None:
    offices = await loaded.offices.list(CLI)
    assert len(offices) == len(demo.OFFICES)
    kinds = {o.kind.value for o in offices}
    assert kinds == {"secretariat", "capital", "province", "ministry", "military_region", "military_command"}
    assert sum(1 for o in offices if o.kind.value in ("province", "capital")) == 25
    assert all(o.name_km and o.name_en for o in offices)
    people = await loaded.people.list(CLI)
    assert {r for p in people for r in p.roles} == set(Role)
    start = (await loaded.meetings.list_visible(CLI))[-1].starts_at
    assert start.astimezone(demo.PHNOM_PENH_TZ).weekday() in (3, 4)


async def test_people_validation_changes_nothing(loaded: Services) -> None:
    admin = await caller_for(loaded, "secretariat")
    office_id = (await loaded.offices.list(CLI))[0].id
    before = len(await loaded.people.list(CLI))
    bad = [
        dict(username="x", full_name="A", office_id=office_id, roles=["delegate"], password="long-enough-pass"),
        dict(username="newperson", full_name="", office_id=office_id, roles=["delegate"], password="long-enough-pass"),
        dict(username="newperson", full_name="A", office_id=999999, roles=["delegate"], password="long-enough-pass"),
        dict(username="newperson", full_name="A", office_id=office_id, roles=["king"], password="long-enough-pass"),
        dict(username="newperson", full_name="A", office_id=office_id, roles=[], password="long-enough-pass"),
        dict(username="newperson", full_name="A", office_id=office_id, roles=["delegate"], password="short"),
        dict(username="newperson", full_name="A", office_id=office_id, roles=["delegate"], password="newperson-123456"),
    ]
    for fields in bad:
        with pytest.raises(ValidationFailed):
            await loaded.people.create(admin, **fields)
    assert len(await loaded.people.list(CLI)) == before
    assert (await loaded.audit.verify(CLI)).ok


async def test_only_the_secretariat_administers(loaded: Services) -> None:
    for username in ("chair", "governor", "commander", "observer"):
        caller = await caller_for(loaded, username)
        with pytest.raises(PermissionDenied):
            await loaded.offices.create(caller, code="ZZ", kind="ministry", name_en="Z", name_km="ហ")
        with pytest.raises(PermissionDenied):
            await loaded.people.list(caller)
        with pytest.raises(PermissionDenied):
            await loaded.audit.recent(caller)


async def test_secretariat_cannot_lock_itself_out(loaded: Services) -> None:
    admin = await caller_for(loaded, "secretariat")
    me = admin.principal
    assert me is not None
    with pytest.raises(ValidationFailed):
        await loaded.people.update(admin, me.person_id, roles=["chair"])
    with pytest.raises(ValidationFailed):
        await loaded.people.update(admin, me.person_id, active=False)


async def test_briefing_is_invisible_to_the_uninvited(loaded: Services) -> None:
    commander = await caller_for(loaded, "commander")
    briefing = next(m for m in await loaded.meetings.list_visible(commander) if m.kind.value == "briefing")
    for username in ("governor", "secretariat", "observer", "chair"):
        caller = await caller_for(loaded, username)
        assert briefing.id not in {m.id for m in await loaded.meetings.list_visible(caller)}
        with pytest.raises(NotFound):
            await loaded.meetings.get(caller, briefing.id)
        with pytest.raises(NotFound):
            await loaded.meetings.mint_join_token(caller, briefing.id)


async def test_commander_creates_briefings_for_own_office_only(loaded: Services) -> None:
    commander = await caller_for(loaded, "commander")
    offices = {o.code: o.id for o in await loaded.offices.list(CLI)}
    start = dt.datetime(2027, 1, 8, 1, 0, tzinfo=dt.UTC)
    meeting = await loaded.meetings.create(commander, title="Border", kind="briefing", host_office_id=offices["MR-4"],
                                           starts_at=start, ends_at=start + dt.timedelta(hours=1),
                                           invited_office_ids=[offices["KH-22"]])
    assert meeting.host_office_id == offices["MR-4"]
    with pytest.raises(PermissionDenied):
        await loaded.meetings.create(commander, title="X", kind="briefing", host_office_id=offices["MR-1"],
                                     starts_at=start, ends_at=start + dt.timedelta(hours=1))
    with pytest.raises(PermissionDenied):
        await loaded.meetings.create(commander, title="X", kind="cabinet_session", host_office_id=offices["OCM"],
                                     starts_at=start, ends_at=start + dt.timedelta(hours=1))


async def test_meeting_validation(loaded: Services) -> None:
    admin = await caller_for(loaded, "secretariat")
    ocm = next(o.id for o in await loaded.offices.list(CLI) if o.code == "OCM")
    kh17 = next(o.id for o in await loaded.offices.list(CLI) if o.code == "KH-17")
    start = dt.datetime(2027, 1, 8, 1, 0, tzinfo=dt.UTC)
    cases = [
        dict(title="S", kind="cabinet_session", host_office_id=ocm, starts_at=start, ends_at=start),
        dict(title="S", kind="cabinet_session", host_office_id=ocm, starts_at="2027-01-08T08:00",
             ends_at="2027-01-08T09:00"),  # no zone
        dict(title="S", kind="cabinet_session", host_office_id=kh17, starts_at=start,
             ends_at=start + dt.timedelta(hours=1)),  # cabinet session hosted by a province
        dict(title="S", kind="party", host_office_id=ocm, starts_at=start, ends_at=start + dt.timedelta(hours=1)),
        dict(title="S", kind="cabinet_session", host_office_id=ocm, starts_at=start,
             ends_at=start + dt.timedelta(hours=1), invited_office_ids=[999999]),
        dict(title="S", kind="cabinet_session", host_office_id=ocm, starts_at=start,
             ends_at=start + dt.timedelta(days=2)),
    ]
    for fields in cases:
        with pytest.raises(ValidationFailed):
            await loaded.meetings.create(admin, **fields)


async def test_join_tokens(loaded: Services) -> None:
    governor = await caller_for(loaded, "governor")
    session = next(m for m in await loaded.meetings.list_visible(governor) if m.kind.value == "cabinet_session")
    token, claims = await loaded.meetings.mint_join_token(governor, session.id)
    grant = await loaded.meetings.verify_join_token(token)
    assert grant.meeting.meeting_id == session.id and grant.principal.username == "governor"
    assert claims.expires_at - claims.issued_at == 120
    payload, signature = token.split(".")
    for forged in (f"{payload}.{signature[:-2]}AA", f"{payload[:-2]}xx.{signature}", "garbage", "", None, 42,
                   "a.b.c", "x" * 5000):
        with pytest.raises(TokenInvalid):
            await loaded.meetings.verify_join_token(forged)
    with pytest.raises(TokenInvalid, match="expired"):
        loaded.meetings.signer.verify(token, now=time.time() + 121)
    # A token signed with another key is worthless.
    other = Services.build(loaded.db, loaded.auth.config, "another-secret-0123456789abcdefghijklmnop")
    with pytest.raises(TokenInvalid, match="signature"):
        await other.meetings.verify_join_token(token)
    # Disabling the account revokes tokens already handed out.
    await loaded.people.update(CLI, governor.principal.person_id, active=False)  # type: ignore[union-attr]
    with pytest.raises(TokenInvalid):
        await loaded.meetings.verify_join_token(token)
