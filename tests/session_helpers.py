"""Helpers for tests of a running session: a fresh cabinet session per test, tokens for it."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from harness import LiveServer
from meetings.models import Meeting, MeetingKind
from meetings.policy import Caller
from meetings.services.common import principal_of
from sigclient import SigClient

CLI = Caller.cli()
SESSION_EVENTS = ("session", "floor", "quorum", "register", "roll_call")


async def new_session(server: LiveServer, *, extra_office_codes: tuple[str, ...] = (), grace_seconds: int = 60,
                      quorum_percent: int = 50) -> int:
    """A new cabinet session invited like the demo one (plus ``extra_office_codes``), with two items."""
    services = server.services()
    try:
        demo = next(m for m in await services.meetings.list_visible(CLI) if m.kind is MeetingKind.CABINET_SESSION)
        offices = {i.office_id for i in demo.invitations if i.office_id is not None}
        for office in await services.offices.list(CLI):
            if office.code in extra_office_codes:
                offices.add(office.id)
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        meeting: Meeting = await services.meetings.create(
            CLI, title=f"Session {time.monotonic_ns()}", kind="cabinet_session", host_office_id=demo.host_office_id,
            starts_at=start, ends_at=start + dt.timedelta(hours=2), invited_office_ids=sorted(offices),
            invited_person_ids=[i.person_id for i in demo.invitations if i.person_id is not None])
        for title, minutes in (("Budget", 15), ("Floods", 10)):
            await services.agenda.add(CLI, meeting.id, title=title, presenter_office_id=None, planned_minutes=minutes)
        await services.session.set_rules(CLI, meeting.id, grace_seconds=grace_seconds, quorum_percent=quorum_percent)
        return meeting.id
    finally:
        await services.db.dispose()


async def token_for(server: LiveServer, username: str, meeting_id: int) -> str:
    services = server.services()
    try:
        person = await services.people.find(CLI, username)
        token, _ = await services.meetings.mint_join_token(Caller(principal_of(person), "127.0.0.1"), meeting_id)
        return token
    finally:
        await services.db.dispose()


async def sig_join(server: LiveServer, made: dict[str, SigClient], username: str, meeting_id: int,
                   key: str | None = None) -> tuple[SigClient, dict[str, Any]]:
    client = SigClient(server.url)
    for name in SESSION_EVENTS:
        client.sio.on(name, client._recorder(name))
    made[key or username] = client
    await client.connect(await token_for(server, username, meeting_id))
    return client, await client.call("join")


async def with_services(server: LiveServer, fn: Callable[[Any], Any]) -> Any:
    services = server.services()
    try:
        return await fn(services)
    finally:
        await services.db.dispose()


async def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.25) -> Any:
    """Retry ``check`` (sync or async) until it stops raising AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)
