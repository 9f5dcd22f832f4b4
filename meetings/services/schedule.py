"""Weekly series: create, generate occurrences, move or cancel one occurrence, retitle, end a series."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select

from meetings import recurrence
from meetings.db import Database
from meetings.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meetings.models import (Invitation, Meeting, MeetingKind, MeetingSeries, MeetingState, Office, OfficeKind,
                             Role, SeriesInvitation)
from meetings.models.schedule import PHNOM_PENH
from meetings.policy import Action, Caller, MeetingAccess, decide, require
from meetings.services.common import clean_int, clean_text, meeting_access, record, require_visible
from meetings.services.meetings import MAX_DURATION, MeetingService, _ids, _parse_time
from meetings.services.notices import notify

#: How far ahead occurrences exist as meetings (invitations, agenda, calendar entries).
HORIZON_WEEKS = 12
MAX_HORIZON_WEEKS = 104


def series_access(series: MeetingSeries) -> MeetingAccess:
    """The policy's view of a series: like one of its occurrences, before it is generated."""
    return MeetingAccess(
        meeting_id=0, kind=series.kind, state=MeetingState.SCHEDULED, host_office_id=series.host_office_id,
        invited_office_ids=frozenset(i.office_id for i in series.invitations if i.office_id is not None),
        invited_person_ids=frozenset(i.person_id for i in series.invitations if i.person_id is not None),
    )


def _local_time(value: object) -> dt.time:
    if isinstance(value, dt.time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    try:
        return dt.time.fromisoformat(str(value).strip()).replace(second=0, microsecond=0, tzinfo=None)
    except ValueError:
        raise ValidationFailed("local_time must be HH:MM", field="local_time") from None


def _date(value: object, field: str, *, required: bool = True) -> dt.date | None:
    if value in (None, "") and not required:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(f"{field} must be a date (YYYY-MM-DD)", field=field) from None


def _when(meeting: Meeting, tz: str = PHNOM_PENH) -> str:
    zone = recurrence.zone(tz)
    return meeting.starts_at.astimezone(zone).strftime("%a %d %b %Y %H:%M")


class ScheduleService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    # -- series ----------------------------------------------------------------------------------
    async def create_series(self, caller: Caller, *, title: object, kind: object, host_office_id: object,
                            weekday: object, local_time: object, duration_minutes: object,
                            starts_on: object, until: object = None, timezone: object = PHNOM_PENH,
                            invited_office_ids: object = None, invited_person_ids: object = None,
                            weeks: int = HORIZON_WEEKS, now: dt.datetime | None = None) -> MeetingSeries:
        try:
            series_kind = MeetingKind(str(kind))
        except ValueError:
            raise ValidationFailed("kind must be cabinet_session or briefing", field="kind") from None
        me = require(caller, Action.CREATE_CABINET_SESSION if series_kind is MeetingKind.CABINET_SESSION
                     else Action.CREATE_BRIEFING)
        clean_title = clean_text(title, "title", max_length=200)
        day = clean_int(weekday, "weekday", 0, 6)
        at = _local_time(local_time)
        minutes = clean_int(duration_minutes, "duration_minutes", 1, int(MAX_DURATION.total_seconds() // 60))
        tz_name = str(timezone or PHNOM_PENH)
        recurrence.zone(tz_name)
        first = _date(starts_on, "starts_on")
        last = _date(until, "until", required=False)
        assert first is not None
        if last is not None and last < first:
            raise ValidationFailed("until must not be before starts_on", field="until")
        office_ids = _ids(invited_office_ids, "invited_office_ids")
        person_ids = _ids(invited_person_ids, "invited_person_ids")
        host_id = clean_int(host_office_id, "host_office_id")
        async with self.db.write() as uow:
            host = await uow.session.get(Office, host_id)
            if host is None or not host.active:
                raise ValidationFailed("no such active office", field="host_office_id")
            if series_kind is MeetingKind.CABINET_SESSION and host.kind is not OfficeKind.SECRETARIAT:
                raise ValidationFailed("a cabinet session is hosted by the secretariat", field="host_office_id")
            if me is not None and not me.has(Role.SECRETARIAT) and host.id != me.office_id:
                raise PermissionDenied("a commander hosts briefings for their own office only")
            await MeetingService._check_invitees(uow.session, office_ids, person_ids)
            creator = me.person_id if me else await self.meetings._operator_id(uow)
            series = MeetingSeries(title=clean_title, kind=series_kind, host_office_id=host.id, weekday=day,
                                   local_time=at, duration_minutes=minutes, timezone=tz_name, starts_on=first,
                                   until=last, created_by_id=creator)
            series.invitations = [SeriesInvitation(office_id=o) for o in sorted(office_ids)] + [
                SeriesInvitation(person_id=p) for p in sorted(person_ids)]
            uow.session.add(series)
            await uow.session.flush()
            record(uow, caller, "series.create", target_type="series", target_id=series.id,
                   details={"title": clean_title, "kind": series_kind.value, "host_office_id": host.id,
                            "weekday": day, "local_time": at.strftime("%H:%M"), "duration_minutes": minutes,
                            "timezone": tz_name, "starts_on": first.isoformat(),
                            "until": last.isoformat() if last else None,
                            "invited_office_ids": sorted(office_ids), "invited_person_ids": sorted(person_ids)})
            await self._generate(uow, caller, series, weeks, now)
        return await self.get_series(caller, series.id)

    async def generate(self, caller: Caller, series_id: int, *, weeks: int = HORIZON_WEEKS,
                       now: dt.datetime | None = None) -> list[Meeting]:
        """Create the occurrences of the next ``weeks`` weeks that do not exist yet (idempotent)."""
        series = await self.get_series(caller, series_id)
        require(caller, Action.MANAGE_MEETING, series_access(series))
        weeks = clean_int(weeks, "weeks", 1, MAX_HORIZON_WEEKS)
        async with self.db.write() as uow:
            fresh = await uow.session.get(MeetingSeries, series.id)
            assert fresh is not None
            if not fresh.active:
                raise Conflict("the series has ended")
            created = await self._generate(uow, caller, fresh, weeks, now)
        return created

    async def _generate(self, uow, caller: Caller, series: MeetingSeries, weeks: int,  # type: ignore[no-untyped-def]
                        now: dt.datetime | None) -> list[Meeting]:
        now = now or dt.datetime.now(dt.UTC)
        tz = recurrence.zone(series.timezone)
        today = now.astimezone(tz).date()
        candidates = [o for o in recurrence.weekly(
            weekday=series.weekday, local_time=series.local_time, duration_minutes=series.duration_minutes,
            timezone=series.timezone, starts_on=series.starts_on, until=series.until, window_start=today,
            window_end=today + dt.timedelta(weeks=weeks)) if o.starts_at >= now]
        existing = set((await uow.session.execute(select(Meeting.occurrence_date).where(
            Meeting.series_id == series.id))).scalars())
        created: list[Meeting] = []
        for occurrence in candidates:
            if occurrence.local_date in existing:
                continue
            meeting = Meeting(title=series.title, kind=series.kind, host_office_id=series.host_office_id,
                              starts_at=occurrence.starts_at, ends_at=occurrence.ends_at,
                              created_by_id=series.created_by_id, series_id=series.id,
                              occurrence_date=occurrence.local_date)
            meeting.invitations = [Invitation(office_id=i.office_id, person_id=i.person_id)
                                   for i in series.invitations]
            uow.session.add(meeting)
            created.append(meeting)
        if created:
            await uow.session.flush()
            record(uow, caller, "series.generate", target_type="series", target_id=series.id,
                   details={"meeting_ids": [m.id for m in created],
                            "dates": [m.occurrence_date.isoformat() for m in created if m.occurrence_date]})
        return created

    async def get_series(self, caller: Caller, series_id: int) -> MeetingSeries:
        async with self.db.read() as session:
            series = await session.get(MeetingSeries, series_id)
        if series is None:
            raise NotFound("no such series")
        require_visible(caller, series_access(series), "no such series")
        return series

    async def list_series(self, caller: Caller) -> Sequence[MeetingSeries]:
        """The series the caller may manage (the secretariat's sessions, a command's own briefings)."""
        me = require(caller, Action.VIEW_OFFICES)
        async with self.db.read() as session:
            rows = (await session.execute(select(MeetingSeries).order_by(MeetingSeries.id))).scalars().unique().all()
        if me is None:
            return rows
        return [s for s in rows if decide(me, Action.MANAGE_MEETING, series_access(s))]

    async def occurrences(self, caller: Caller, series_id: int) -> Sequence[Meeting]:
        series = await self.get_series(caller, series_id)
        async with self.db.read() as session:
            rows = (await session.execute(select(Meeting).where(Meeting.series_id == series.id)
                                          .order_by(Meeting.starts_at))).scalars().unique().all()
        return rows

    async def end_series(self, caller: Caller, series_id: int, *, last_date: object = None,
                         now: dt.datetime | None = None) -> MeetingSeries:
        """No occurrences after ``last_date`` (default: today); later scheduled ones are cancelled."""
        series = await self.get_series(caller, series_id)
        require(caller, Action.MANAGE_MEETING, series_access(series))
        now = now or dt.datetime.now(dt.UTC)
        last = _date(last_date, "last_date", required=False) or now.astimezone(recurrence.zone(series.timezone)).date()
        async with self.db.write() as uow:
            fresh = await uow.session.get(MeetingSeries, series.id)
            assert fresh is not None
            if not fresh.active:
                raise Conflict("the series has already ended")
            fresh.active = False
            fresh.until = max(min(last, fresh.until) if fresh.until else last, fresh.starts_on - dt.timedelta(days=1))
            later = (await uow.session.execute(select(Meeting).where(
                Meeting.series_id == series.id, Meeting.occurrence_date > last,
                Meeting.state == MeetingState.SCHEDULED))).scalars().unique().all()
            for meeting in later:
                self._bump(meeting, now)
                meeting.state = MeetingState.CANCELLED
                await notify(uow.session, meeting, "series_ended",
                             f"{meeting.title} on {_when(meeting, series.timezone)} is cancelled: the series has ended.",
                             skip_person_id=caller.actor_id)
            record(uow, caller, "series.end", target_type="series", target_id=series.id,
                   details={"last_date": last.isoformat(), "cancelled_meeting_ids": [m.id for m in later]})
        return await self.get_series(caller, series.id)

    # -- one occurrence (or any single meeting) ----------------------------------------------------
    @staticmethod
    def _bump(meeting: Meeting, now: dt.datetime) -> None:
        meeting.sequence = (meeting.sequence or 0) + 1
        meeting.updated_at = now

    async def _managed(self, caller: Caller, meeting_id: int) -> Meeting:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.MANAGE_MEETING, meeting_access(meeting))
        if meeting.state is not MeetingState.SCHEDULED:
            raise Conflict(f"only a scheduled meeting can be changed; this one is {meeting.state.value}")
        return meeting

    async def move(self, caller: Caller, meeting_id: int, *, starts_at: object, ends_at: object) -> Meeting:
        meeting = await self._managed(caller, meeting_id)
        start = _parse_time(starts_at, "starts_at")
        end = _parse_time(ends_at, "ends_at")
        if end <= start:
            raise ValidationFailed("ends_at must be after starts_at", field="ends_at")
        if end - start > MAX_DURATION:
            raise ValidationFailed("a meeting lasts at most 24 hours", field="ends_at")
        if start == meeting.starts_at and end == meeting.ends_at:
            return meeting
        now = dt.datetime.now(dt.UTC)
        async with self.db.write() as uow:
            fresh = await uow.session.get(Meeting, meeting.id)
            assert fresh is not None
            before = (fresh.starts_at, fresh.ends_at)
            was = _when(fresh)
            fresh.starts_at, fresh.ends_at = start, end
            self._bump(fresh, now)
            if fresh.positions_deadline and fresh.positions_deadline > start:
                fresh.positions_deadline = start
            await notify(uow.session, fresh, "moved", f"{fresh.title} moved from {was} to {_when(fresh)} "
                         "(Phnom Penh time).", skip_person_id=caller.actor_id)
            record(uow, caller, "meeting.move", target_type="meeting", target_id=fresh.id,
                   details={"from": [t.isoformat() for t in before], "to": [start.isoformat(), end.isoformat()],
                            "sequence": fresh.sequence})
        return await self.meetings.get(caller, meeting.id)

    async def cancel(self, caller: Caller, meeting_id: int, *, reason: object = "") -> Meeting:
        meeting = await self._managed(caller, meeting_id)
        why = clean_text(reason or "", "reason", max_length=500, min_length=0)
        now = dt.datetime.now(dt.UTC)
        async with self.db.write() as uow:
            fresh = await uow.session.get(Meeting, meeting.id)
            assert fresh is not None
            fresh.state = MeetingState.CANCELLED
            self._bump(fresh, now)
            text = f"{fresh.title} on {_when(fresh)} (Phnom Penh time) is cancelled." + (f" {why}" if why else "")
            await notify(uow.session, fresh, "cancelled", text, skip_person_id=caller.actor_id)
            record(uow, caller, "meeting.cancel", target_type="meeting", target_id=fresh.id,
                   details={"reason": why, "sequence": fresh.sequence})
        return await self.meetings.get(caller, meeting.id)

    async def update_details(self, caller: Caller, meeting_id: int, *, title: object = None,
                             description: object = None) -> Meeting:
        """Retitle or describe one meeting; a new title is announced to the invitees."""
        meeting = await self._managed(caller, meeting_id)
        new_title = clean_text(title, "title", max_length=200) if title is not None else meeting.title
        new_description = (clean_text(description, "description", max_length=4000, min_length=0)
                           if description is not None else meeting.description)
        if new_title == meeting.title and new_description == meeting.description:
            return meeting
        async with self.db.write() as uow:
            fresh = await uow.session.get(Meeting, meeting.id)
            assert fresh is not None
            old = fresh.title
            fresh.title, fresh.description = new_title, new_description
            self._bump(fresh, dt.datetime.now(dt.UTC))
            if new_title != old:
                await notify(uow.session, fresh, "retitled", f"{old} on {_when(fresh)} is now called {new_title}.",
                             skip_person_id=caller.actor_id)
            record(uow, caller, "meeting.update", target_type="meeting", target_id=fresh.id,
                   details={"title": new_title, "old_title": old, "description_changed":
                            new_description != meeting.description, "sequence": fresh.sequence})
        return await self.meetings.get(caller, meeting.id)
