"""The pure attendance computation: grace merging, sites, late arrival, early departure, quorum."""

from __future__ import annotations

import datetime as dt

import pytest

from meetings.attendance import Connection, Interval, compute, merge, quorum

T0 = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)  # Friday 08:00 in Phnom Penh
GRACE = dt.timedelta(seconds=60)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_a_drop_inside_the_grace_window_is_not_an_absence() -> None:
    merged = merge([Interval(at(0), at(100)), Interval(at(150), at(300))], GRACE)
    assert merged == (Interval(at(0), at(300)),)


def test_a_drop_longer_than_the_grace_window_is_an_absence() -> None:
    merged = merge([Interval(at(150), at(300)), Interval(at(0), at(100)), Interval(at(161), at(170))],
                   dt.timedelta(seconds=10))
    assert merged == (Interval(at(0), at(100)), Interval(at(150), at(300)))


def test_merge_refuses_an_interval_that_ends_before_it_starts() -> None:
    with pytest.raises(ValueError, match="ends before"):
        merge([Interval(at(10), at(0))], GRACE)


def test_an_open_connection_that_joined_after_now_is_not_an_error() -> None:
    """The live register took "now", then read a join another writer committed a moment later (issue 10.6)."""
    register = compute([Connection(1, 10, at(5.0), None)], grace=GRACE, now=at(4.9), start=T0)
    assert register.people[1].present_now and register.people[1].seconds == 0


def test_register_per_person_and_site_while_the_session_runs() -> None:
    conns = [
        Connection(1, 10, at(-30), at(100)),
        Connection(1, 10, at(130)),  # rejoined inside grace, still connected
        Connection(2, 20, at(600), at(700)),  # came 10 minutes late, dropped 20 s ago
        Connection(3, 20, at(0), at(200)),  # same office as 2, left long ago
        Connection(4, 30, at(0), at(300)),  # gone for good
    ]
    reg = compute(conns, grace=GRACE, now=at(720), start=at(0))
    one = reg.people[1]
    assert one.intervals == (Interval(at(-30), at(720)),) and one.present_now and one.late_seconds == 0
    two = reg.people[2]
    assert two.late_seconds == 600 and two.present_now  # inside the grace window
    assert reg.people[3].present_now is False and reg.people[3].left_early_seconds is None
    site = reg.sites[20]
    assert site.intervals == (Interval(at(0), at(200)), Interval(at(600), at(700)))
    assert site.late_seconds == 0 and site.seconds == 300
    assert reg.present_sites() == {10, 20}


def test_register_after_the_session_closed() -> None:
    conns = [Connection(1, 10, at(0), at(3600)), Connection(2, 20, at(0), at(3000)),
             Connection(3, 30, at(0), at(3570))]
    reg = compute(conns, grace=GRACE, now=at(4000), start=at(0), end=at(3600))
    assert reg.people[1].left_early_seconds == 0
    assert reg.people[2].left_early_seconds == 600
    assert reg.people[3].left_early_seconds == 0  # within the grace window of the close
    assert reg.present_sites() == frozenset()


@pytest.mark.parametrize(("invited", "present", "percent", "required", "met"), [
    (25, 13, 50, 13, True), (25, 12, 50, 13, False), (3, 1, 50, 2, False), (10, 10, 100, 10, True),
    (1, 0, 1, 1, False), (0, 0, 50, 0, True),
])
def test_quorum(invited: int, present: int, percent: int, required: int, met: bool) -> None:
    q = quorum(invited_sites=invited, present_sites=present, percent=percent)
    assert (q.required, q.met) == (required, met)


def test_quorum_refuses_a_nonsense_rule() -> None:
    with pytest.raises(ValueError):
        quorum(invited_sites=5, present_sites=5, percent=0)
