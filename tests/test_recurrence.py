"""Weekly recurrence: pure, across months, years and a DST change."""

from __future__ import annotations

import datetime as dt

import pytest

from meetings.errors import ValidationFailed
from meetings.recurrence import weekly


def test_every_friday_0800_phnom_penh_across_months_and_the_year() -> None:
    occ = weekly(weekday=4, local_time=dt.time(8, 0), duration_minutes=180, timezone="Asia/Phnom_Penh",
                 starts_on=dt.date(2026, 12, 1), until=None, window_start=dt.date(2026, 12, 1),
                 window_end=dt.date(2027, 2, 5))
    dates = [o.local_date for o in occ]
    assert dates[0] == dt.date(2026, 12, 4) and dates[-1] == dt.date(2027, 2, 5)
    assert dt.date(2027, 1, 1) in dates and dt.date(2026, 12, 25) in dates  # across the year boundary
    assert all(d.weekday() == 4 for d in dates) and len(dates) == 10
    assert all(o.starts_at.tzinfo == dt.UTC and o.starts_at.hour == 1 and o.starts_at.minute == 0 for o in occ)
    assert all(o.ends_at - o.starts_at == dt.timedelta(hours=3) for o in occ)


def test_local_time_is_kept_across_the_march_dst_change() -> None:
    occ = weekly(weekday=4, local_time=dt.time(8, 0), duration_minutes=60, timezone="Europe/London",
                 starts_on=dt.date(2027, 3, 1), until=dt.date(2027, 4, 9), window_start=dt.date(2027, 3, 1),
                 window_end=dt.date(2027, 12, 31))
    by_date = {o.local_date: o.starts_at for o in occ}
    assert by_date[dt.date(2027, 3, 26)] == dt.datetime(2027, 3, 26, 8, 0, tzinfo=dt.UTC)  # GMT
    assert by_date[dt.date(2027, 4, 2)] == dt.datetime(2027, 4, 2, 7, 0, tzinfo=dt.UTC)  # BST after 28 March
    assert max(by_date) == dt.date(2027, 4, 9)  # until is inclusive


def test_a_time_inside_the_spring_gap_uses_the_offset_before_it() -> None:
    # Sunday 28 March 2027, 01:30 does not exist in London: read with GMT (RFC 5545 3.3.5).
    occ = weekly(weekday=6, local_time=dt.time(1, 30), duration_minutes=30, timezone="Europe/London",
                 starts_on=dt.date(2027, 3, 28), until=dt.date(2027, 3, 28), window_start=dt.date(2027, 3, 1),
                 window_end=dt.date(2027, 4, 30))
    assert [o.starts_at for o in occ] == [dt.datetime(2027, 3, 28, 1, 30, tzinfo=dt.UTC)]


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        weekly(weekday=7, local_time=dt.time(8), duration_minutes=1, timezone="Asia/Phnom_Penh",
               starts_on=dt.date(2027, 1, 1), until=None, window_start=dt.date(2027, 1, 1),
               window_end=dt.date(2027, 2, 1))
    with pytest.raises(ValidationFailed):
        weekly(weekday=1, local_time=dt.time(8), duration_minutes=1, timezone="Mars/Olympus",
               starts_on=dt.date(2027, 1, 1), until=None, window_start=dt.date(2027, 1, 1),
               window_end=dt.date(2027, 2, 1))
