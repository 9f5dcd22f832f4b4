"""Per-person iCalendar feeds at a secret address, and the .ics of one meeting.

Calendar apps cannot log in, so the feed address carries a random token. Only its SHA-256 is stored;
the token is shown once, when created or rotated. The feed lists what the person may view, re-checked
against the current database at every fetch (a revoked account or invitation drops out at once).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select

from meetings import ical
from meetings.db import Database
from meetings.errors import NotFound, ValidationFailed
from meetings.models import CalendarFeed, Person
from meetings.policy import Action, Caller, require
from meetings.services.common import principal_of, record
from meetings.services.meetings import MeetingService
from meetings.tokens import token_digest

TOKEN_BYTES = 32


class CalendarService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def current(self, caller: Caller) -> CalendarFeed | None:
        me = require(caller, Action.MANAGE_CALENDAR_FEED)
        if me is None:
            return None
        async with self.db.read() as session:
            return await session.scalar(select(CalendarFeed).where(
                CalendarFeed.person_id == me.person_id, CalendarFeed.revoked_at.is_(None)))

    async def rotate(self, caller: Caller) -> str:
        """Create (or replace) the caller's feed address; returns the token, which is never stored."""
        me = require(caller, Action.MANAGE_CALENDAR_FEED)
        if me is None:
            raise ValidationFailed("the operator has no calendar")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = dt.datetime.now(dt.UTC)
        async with self.db.write() as uow:
            old = (await uow.session.execute(select(CalendarFeed).where(
                CalendarFeed.person_id == me.person_id, CalendarFeed.revoked_at.is_(None)))).scalars().all()
            for feed in old:
                feed.revoked_at = now
            feed = CalendarFeed(person_id=me.person_id, token_sha256=token_digest(token), created_at=now)
            uow.session.add(feed)
            await uow.session.flush()
            record(uow, caller, "calendar.feed.rotate" if old else "calendar.feed.create", target_type="person",
                   target_id=me.person_id, details={"feed_id": feed.id, "revoked_feed_ids": [f.id for f in old]})
        return token

    async def revoke(self, caller: Caller) -> None:
        me = require(caller, Action.MANAGE_CALENDAR_FEED)
        if me is None:
            return
        async with self.db.write() as uow:
            old = (await uow.session.execute(select(CalendarFeed).where(
                CalendarFeed.person_id == me.person_id, CalendarFeed.revoked_at.is_(None)))).scalars().all()
            if not old:
                raise NotFound("there is no calendar feed to revoke")
            for feed in old:
                feed.revoked_at = dt.datetime.now(dt.UTC)
            record(uow, caller, "calendar.feed.revoke", target_type="person", target_id=me.person_id,
                   details={"feed_ids": [f.id for f in old]})

    async def feed(self, token: object, *, base_url: str = "", address: str = "") -> bytes:
        """The iCalendar feed behind a token; an unknown, revoked or disabled one is simply not found."""
        if not isinstance(token, str) or not 20 <= len(token) <= 128:
            raise NotFound("no such calendar")
        async with self.db.read() as session:
            feed = await session.scalar(select(CalendarFeed).where(
                CalendarFeed.token_sha256 == token_digest(token), CalendarFeed.revoked_at.is_(None)))
            person = await session.get(Person, feed.person_id) if feed else None
        if feed is None or person is None or not person.active or not person.roles:
            raise NotFound("no such calendar")
        caller = Caller(principal_of(person), address)
        meetings = await self.meetings.list_visible(caller)
        return ical.calendar(sorted(meetings, key=lambda m: m.starts_at),
                             name=f"Cabinet — {person.full_name}", base_url=base_url)

    async def meeting_ics(self, caller: Caller, meeting_id: int, *, base_url: str = "") -> tuple[str, bytes]:
        meeting = await self.meetings.get(caller, meeting_id)  # 404 for those who may not view it
        return meeting.title, ical.calendar([meeting], name=meeting.title, base_url=base_url, method="PUBLISH")
