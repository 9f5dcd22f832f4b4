"""Weekly recurrence in a named time zone: pure date arithmetic, no database, no clock.

Occurrences are computed from *local* dates and wall-clock times, then converted to UTC, so "every
Friday 08:00" stays 08:00 local across DST changes and month or year boundaries. A wall-clock time
that does not exist on a date (inside a spring-forward gap) is read with the offset in force before
the gap, as RFC 5545 (3.3.5) prescribes; an ambiguous one (autumn fold) takes its first occurrence.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meetings.errors import ValidationFailed

#: The shape of an IANA zone name ("Asia/Phnom_Penh", "UTC", "America/Argentina/Buenos_Aires").
TZ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]{0,30}(/[A-Za-z0-9_+-]{1,30}){0,2}$")


@dataclass(frozen=True)
class Occurrence:
    local_date: dt.date
    starts_at: dt.datetime  # UTC
    ends_at: dt.datetime  # UTC


def zone(name: str) -> ZoneInfo:
    """An IANA time zone by name; anything else (a folder such as "America", a long or odd string) is a
    ValidationFailed naming the field."""
    if not isinstance(name, str) or not TZ_NAME.match(name):
        raise ValidationFailed(f"unknown time zone {str(name)[:64]!r}", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed(f"unknown time zone {name!r}", field="timezone") from None


def to_utc(local_date: dt.date, local_time: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant of a local wall-clock time (fold=0: before-gap offset, first of a fold)."""
    return dt.datetime.combine(local_date, local_time.replace(tzinfo=None), tzinfo=tz).astimezone(dt.UTC)


def first_on_or_after(day: dt.date, weekday: int) -> dt.date:
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def weekly(*, weekday: int, local_time: dt.time, duration_minutes: int, timezone: str, starts_on: dt.date,
           until: dt.date | None, window_start: dt.date, window_end: dt.date) -> list[Occurrence]:
    """Occurrences whose local date falls in [max(starts_on, window_start), min(until, window_end)]."""
    if not 0 <= weekday <= 6:
        raise ValidationFailed("weekday must be 0 (Monday) to 6 (Sunday)", field="weekday")
    tz = zone(timezone)
    first = max(starts_on, window_start)
    last = min(until, window_end) if until else window_end
    out: list[Occurrence] = []
    day = first_on_or_after(first, weekday)
    length = dt.timedelta(minutes=duration_minutes)
    while day <= last:
        start = to_utc(day, local_time, tz)
        out.append(Occurrence(day, start, start + length))
        day += dt.timedelta(days=7)
    return out
