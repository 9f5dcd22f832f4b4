"""Attendance from connection intervals: pure functions, no database, no clock.

A person's connections to a session become presence intervals; a gap no longer than the grace
window (a reconnect after a network drop) is not an absence, so it is merged away. A site (office)
is present while any of its people is. Quorum is a share of the invited sites present.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Connection:
    """One connection of a person to a session; ``left_at`` None while it is still open."""

    person_id: int
    office_id: int
    joined_at: dt.datetime
    left_at: dt.datetime | None = None


@dataclass(frozen=True)
class Interval:
    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Presence:
    """The attendance of one person or one site."""

    intervals: tuple[Interval, ...]
    #: Connected now, or dropped less than the grace window ago (expected back).
    present_now: bool
    #: How long after the reference start the first arrival was (0 when on time; None if never came).
    late_seconds: float | None
    #: How long before the end the last departure was (0 when stayed; None while the session runs or
    #: if never came).
    left_early_seconds: float | None

    @property
    def attended(self) -> bool:
        return bool(self.intervals)

    @property
    def first_arrival(self) -> dt.datetime | None:
        return self.intervals[0].start if self.intervals else None

    @property
    def last_departure(self) -> dt.datetime | None:
        return self.intervals[-1].end if self.intervals else None

    @property
    def seconds(self) -> float:
        return sum(i.seconds for i in self.intervals)


@dataclass(frozen=True)
class Register:
    people: dict[int, Presence]
    sites: dict[int, Presence]
    #: office of each person seen
    office_of: dict[int, int] = field(default_factory=dict)

    def present_sites(self) -> frozenset[int]:
        return frozenset(o for o, p in self.sites.items() if p.present_now)


@dataclass(frozen=True)
class Quorum:
    invited: int
    present: int
    required: int

    @property
    def met(self) -> bool:
        return self.present >= self.required


def merge(intervals: Iterable[Interval], grace: dt.timedelta) -> tuple[Interval, ...]:
    """Merge overlapping intervals and those separated by a gap of at most ``grace``."""
    out: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: (i.start, i.end)):
        if iv.end < iv.start:
            raise ValueError("an interval ends before it starts")
        if out and iv.start - out[-1].end <= grace:
            if iv.end > out[-1].end:
                out[-1] = Interval(out[-1].start, iv.end)
        else:
            out.append(iv)
    return tuple(out)


def _presence(connections: list[Connection], *, grace: dt.timedelta, now: dt.datetime, start: dt.datetime,
              end: dt.datetime | None) -> Presence:
    open_now = any(c.left_at is None for c in connections)
    # An open connection runs until now, and never ends before it started (a join stamped by another
    # writer just after this register's "now" was taken).
    intervals = merge((Interval(c.joined_at, c.left_at or max(now, c.joined_at)) for c in connections), grace)
    if not intervals:
        return Presence((), False, None, None)
    last_end = intervals[-1].end
    present_now = open_now or (end is None and now - last_end <= grace)
    late = max(0.0, (intervals[0].start - start).total_seconds())
    left_early: float | None = None
    if end is not None:
        left_early = max(0.0, (end - last_end).total_seconds())
        if left_early <= grace.total_seconds():
            left_early = 0.0
    return Presence(intervals, present_now, late, left_early)


def compute(connections: Iterable[Connection], *, grace: dt.timedelta, now: dt.datetime, start: dt.datetime,
            end: dt.datetime | None = None) -> Register:
    """The register of a session: per person and per site.

    ``start`` is when the session was due (late arrival counts from it); ``end`` is when it closed
    (None while it runs: nobody has left early yet, and a drop inside the grace window is presence).
    """
    by_person: dict[int, list[Connection]] = defaultdict(list)
    by_office: dict[int, list[Connection]] = defaultdict(list)
    office_of: dict[int, int] = {}
    for c in connections:
        by_person[c.person_id].append(c)
        by_office[c.office_id].append(c)
        office_of[c.person_id] = c.office_id
    kw = {"grace": grace, "now": now, "start": start, "end": end}
    return Register(
        people={p: _presence(cs, **kw) for p, cs in by_person.items()},  # type: ignore[arg-type]
        sites={o: _presence(cs, **kw) for o, cs in by_office.items()},  # type: ignore[arg-type]
        office_of=office_of,
    )


def quorum(*, invited_sites: int, present_sites: int, percent: int) -> Quorum:
    """At least ``percent`` % of the invited sites (rounded up, and at least one) must be present."""
    if not 1 <= percent <= 100:
        raise ValueError("quorum percent must be between 1 and 100")
    required = max(1, math.ceil(invited_sites * percent / 100)) if invited_sites else 0
    return Quorum(invited=invited_sites, present=present_sites, required=required)
