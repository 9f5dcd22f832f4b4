"""The recording archive's permission matrix: roles x (cabinet session; briefing invited / not invited)
x actions, as pure decisions."""

from __future__ import annotations

import dataclasses

import pytest

from meetings.models import MeetingKind, MeetingState, Role
from meetings.policy import Action, MeetingAccess, Principal, decide

OCM, SIEM_REAP, MR4, MOINFO, KRATIE = 1, 17, 40, 30, 10


def person(role: Role, office: int, pid: int) -> Principal:
    return Principal(person_id=pid, username=role.value, full_name=role.value, office_id=office,
                     roles=frozenset({role}))


SECRETARIAT = person(Role.SECRETARIAT, OCM, 1)
CHAIR = person(Role.CHAIR, OCM, 2)
GOVERNOR = person(Role.DELEGATE, SIEM_REAP, 3)
COMMANDER = person(Role.COMMANDER, MR4, 4)
OBSERVER = person(Role.OBSERVER, MOINFO, 5)
PEOPLE = {p.username: p for p in (SECRETARIAT, CHAIR, GOVERNOR, COMMANDER, OBSERVER)}

SESSION = MeetingAccess(1, MeetingKind.CABINET_SESSION, MeetingState.OPEN, OCM,
                        invited_office_ids=frozenset({SIEM_REAP}), invited_person_ids=frozenset({2, 5}))
#: A briefing hosted by MR-4 to which everyone below is invited (in person), and one nobody but its
#: host is invited to.
BRIEFING_INVITED = MeetingAccess(2, MeetingKind.BRIEFING, MeetingState.OPEN, MR4,
                                 invited_person_ids=frozenset({1, 2, 3, 5}))
BRIEFING_NOT_INVITED = MeetingAccess(3, MeetingKind.BRIEFING, MeetingState.OPEN, MR4,
                                     invited_office_ids=frozenset({KRATIE}))

V, C, D, R = Action.VIEW_RECORDINGS, Action.CONTROL_RECORDING, Action.DELETE_RECORDING, Action.MANAGE_RETENTION
#: (who, meeting) -> the archive actions allowed.
MATRIX: dict[tuple[str, str], set[Action]] = {
    ("secretariat", "session"): {V, C, D, R},
    ("chair", "session"): {V, C},
    ("delegate", "session"): {V},
    ("commander", "session"): set(),  # not invited: the session's recordings do not exist for them
    ("observer", "session"): {V},
    ("secretariat", "briefing_invited"): {V, D, R},  # the secretariat keeps the archive, does not run briefings
    ("chair", "briefing_invited"): {V},
    ("delegate", "briefing_invited"): {V},
    ("commander", "briefing_invited"): {V, C},  # the host commander runs the briefing, deletes nothing
    ("observer", "briefing_invited"): {V},
    ("secretariat", "briefing_not_invited"): set(),
    ("chair", "briefing_not_invited"): set(),
    ("delegate", "briefing_not_invited"): set(),
    ("commander", "briefing_not_invited"): {V, C},  # host office
    ("observer", "briefing_not_invited"): set(),
}
MEETINGS = {"session": SESSION, "briefing_invited": BRIEFING_INVITED, "briefing_not_invited": BRIEFING_NOT_INVITED}


@pytest.mark.parametrize("action", [V, C, D, R])
@pytest.mark.parametrize(("who", "meeting"), list(MATRIX))
def test_archive_matrix(who: str, meeting: str, action: Action) -> None:
    assert decide(PEOPLE[who], action, MEETINGS[meeting]).allowed is (action in MATRIX[(who, meeting)])


@pytest.mark.parametrize(("who", "meeting"), list(MATRIX))
def test_viewing_recordings_is_viewing_the_meeting(who: str, meeting: str) -> None:
    assert (decide(PEOPLE[who], V, MEETINGS[meeting]).allowed
            is decide(PEOPLE[who], Action.VIEW_MEETING, MEETINGS[meeting]).allowed)


@pytest.mark.parametrize("who", list(PEOPLE))
def test_everyone_searches_the_archive(who: str) -> None:
    assert decide(PEOPLE[who], Action.SEARCH_RECORDINGS)
    assert not decide(None, Action.SEARCH_RECORDINGS)
    assert not decide(dataclasses.replace(PEOPLE[who], roles=frozenset()), Action.SEARCH_RECORDINGS)


def test_a_closed_meetings_recordings_stay_visible_and_deletable() -> None:
    closed = dataclasses.replace(SESSION, state=MeetingState.CLOSED)
    assert decide(GOVERNOR, V, closed) and decide(SECRETARIAT, D, closed) and decide(SECRETARIAT, R, closed)
