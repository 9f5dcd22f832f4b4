"""The permission rules as pure functions: every role against every action."""

from __future__ import annotations

import pytest

from meetings.models import MeetingKind, MeetingState, Role
from meetings.policy import Action, MeetingAccess, Principal, decide

OCM, SIEM_REAP, MR4, MOINFO, KRATIE = 1, 17, 40, 30, 10


def person(role: Role, office: int, pid: int = 1) -> Principal:
    return Principal(person_id=pid, username=role.value, full_name=role.value, office_id=office,
                     roles=frozenset({role}))


SECRETARIAT = person(Role.SECRETARIAT, OCM, 1)
CHAIR = person(Role.CHAIR, OCM, 2)
GOVERNOR = person(Role.DELEGATE, SIEM_REAP, 3)
COMMANDER = person(Role.COMMANDER, MR4, 4)
OBSERVER = person(Role.OBSERVER, MOINFO, 5)
OTHER_GOVERNOR = person(Role.DELEGATE, KRATIE, 6)

SESSION = MeetingAccess(1, MeetingKind.CABINET_SESSION, MeetingState.SCHEDULED, OCM,
                        invited_office_ids=frozenset({SIEM_REAP}), invited_person_ids=frozenset({2, 5}))
BRIEFING = MeetingAccess(2, MeetingKind.BRIEFING, MeetingState.SCHEDULED, MR4,
                         invited_office_ids=frozenset({KRATIE}))

ROLE_ACTIONS = {
    Action.VIEW_OFFICES: {"secretariat", "chair", "delegate", "commander", "observer"},
    Action.MANAGE_OFFICES: {"secretariat"},
    Action.VIEW_PEOPLE: {"secretariat"},
    Action.MANAGE_PEOPLE: {"secretariat"},
    Action.VIEW_AUDIT: {"secretariat"},
    Action.CREATE_CABINET_SESSION: {"secretariat"},
    Action.CREATE_BRIEFING: {"secretariat", "commander"},
}
EVERYONE = [SECRETARIAT, CHAIR, GOVERNOR, COMMANDER, OBSERVER]


@pytest.mark.parametrize("action", list(ROLE_ACTIONS))
@pytest.mark.parametrize("who", EVERYONE, ids=lambda p: p.username)
def test_role_actions(action: Action, who: Principal) -> None:
    expected = who.username in ROLE_ACTIONS[action]
    assert decide(who, action).allowed is expected


@pytest.mark.parametrize(
    ("who", "meeting", "view", "manage", "join"),
    [
        (SECRETARIAT, SESSION, True, True, True),
        (CHAIR, SESSION, True, False, True),  # invited in person; chairs but does not administer
        (GOVERNOR, SESSION, True, False, True),  # office invited
        (OTHER_GOVERNOR, SESSION, False, False, False),
        (COMMANDER, SESSION, False, False, False),
        (OBSERVER, SESSION, True, False, True),
        (SECRETARIAT, BRIEFING, False, False, False),  # a briefing is invisible even to the secretariat
        (COMMANDER, BRIEFING, True, True, True),  # host office commander
        (OTHER_GOVERNOR, BRIEFING, True, False, True),  # office invited
        (GOVERNOR, BRIEFING, False, False, False),
        (OBSERVER, BRIEFING, False, False, False),
    ],
    ids=lambda v: v.username if isinstance(v, Principal) else None,
)
def test_meeting_actions(who: Principal, meeting: MeetingAccess, view: bool, manage: bool, join: bool) -> None:
    assert decide(who, Action.VIEW_MEETING, meeting).allowed is view
    assert decide(who, Action.MANAGE_MEETING, meeting).allowed is manage
    assert decide(who, Action.JOIN_MEETING, meeting).allowed is join


@pytest.mark.parametrize(
    ("who", "meeting", "publish"),
    [(SECRETARIAT, SESSION, True), (CHAIR, SESSION, True), (GOVERNOR, SESSION, True), (OBSERVER, SESSION, False),
     (COMMANDER, SESSION, False), (COMMANDER, BRIEFING, True), (OTHER_GOVERNOR, BRIEFING, True)],
    ids=lambda v: v.username if isinstance(v, Principal) else None,
)
def test_publishing_media(who: Principal, meeting: MeetingAccess, publish: bool) -> None:
    assert decide(who, Action.PUBLISH_MEDIA, meeting).allowed is publish


@pytest.mark.parametrize(
    ("who", "meeting", "moderate"),
    [(SECRETARIAT, SESSION, True), (CHAIR, SESSION, True), (GOVERNOR, SESSION, False), (OBSERVER, SESSION, False),
     (COMMANDER, SESSION, False), (COMMANDER, BRIEFING, True), (OTHER_GOVERNOR, BRIEFING, False),
     (SECRETARIAT, BRIEFING, False)],
    ids=lambda v: v.username if isinstance(v, Principal) else None,
)
def test_moderating_a_live_session(who: Principal, meeting: MeetingAccess, moderate: bool) -> None:
    assert decide(who, Action.MODERATE_MEETING, meeting).allowed is moderate


def test_closed_or_cancelled_meetings_cannot_be_joined() -> None:
    for state in (MeetingState.CLOSED, MeetingState.CANCELLED):
        closed = MeetingAccess(1, MeetingKind.CABINET_SESSION, state, OCM, frozenset({SIEM_REAP}))
        decision = decide(GOVERNOR, Action.JOIN_MEETING, closed)
        assert not decision.allowed and state.value in decision.reason
        assert decide(GOVERNOR, Action.VIEW_MEETING, closed).allowed


def test_anonymous_and_roleless_are_refused_everything() -> None:
    roleless = Principal(9, "x", "x", OCM, frozenset())
    for action in Action:
        target = SESSION if action not in ROLE_ACTIONS else None
        assert not decide(None, action, target).allowed
        assert not decide(roleless, action, target).allowed


def test_meeting_actions_need_a_target() -> None:
    assert not decide(SECRETARIAT, Action.VIEW_MEETING, None).allowed


def test_positions_tally_and_en_bloc_actions() -> None:
    """Positions: an invited office (not observers, not the host); tally and en bloc: those who run it."""
    from meetings.models import MeetingKind, MeetingState, Role
    from meetings.policy import Action, MeetingAccess, Principal, decide

    def who(role: Role, office: int, pid: int = 1) -> Principal:
        return Principal(person_id=pid, username="u", full_name="U", office_id=office, roles=frozenset({role}))

    session = MeetingAccess(meeting_id=1, kind=MeetingKind.CABINET_SESSION, state=MeetingState.SCHEDULED,
                            host_office_id=1, invited_office_ids=frozenset({2, 3}), invited_person_ids=frozenset({9}))
    delegate, observer, secretariat = who(Role.DELEGATE, 2), who(Role.OBSERVER, 3), who(Role.SECRETARIAT, 1)
    chair, stranger = who(Role.CHAIR, 1, 9), who(Role.DELEGATE, 7)
    assert decide(delegate, Action.SUBMIT_POSITION, session)
    assert not decide(observer, Action.SUBMIT_POSITION, session)
    assert not decide(secretariat, Action.SUBMIT_POSITION, session)
    assert not decide(stranger, Action.SUBMIT_POSITION, session)
    opened = MeetingAccess(**{**session.__dict__, "state": MeetingState.OPEN})
    assert not decide(delegate, Action.SUBMIT_POSITION, opened)
    for action in (Action.VIEW_POSITIONS, Action.ADOPT_EN_BLOC):
        assert decide(secretariat, action, session) and decide(chair, action, session)
        assert not decide(delegate, action, session) and not decide(observer, action, session)
    closed = MeetingAccess(**{**session.__dict__, "state": MeetingState.CLOSED})
    assert not decide(chair, Action.ADOPT_EN_BLOC, closed) and decide(chair, Action.VIEW_POSITIONS, closed)
    assert all(decide(who(r, 5), Action.MANAGE_CALENDAR_FEED) for r in Role)
    assert not decide(None, Action.MANAGE_CALENDAR_FEED)
