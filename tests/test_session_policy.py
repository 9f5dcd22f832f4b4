"""Permissions for running a session: every new action against every role and meeting state."""

from __future__ import annotations

import dataclasses

import pytest

from meetings.models import MeetingState
from meetings.policy import Action, decide
from test_policy import BRIEFING, CHAIR, COMMANDER, EVERYONE, GOVERNOR, OBSERVER, OTHER_GOVERNOR, SECRETARIAT, SESSION

OPEN = dataclasses.replace(SESSION, state=MeetingState.OPEN)
CLOSED = dataclasses.replace(SESSION, state=MeetingState.CLOSED)
OPEN_BRIEFING = dataclasses.replace(BRIEFING, state=MeetingState.OPEN)
APPROVED = dataclasses.replace(CLOSED, record_approved=True)
APPROVED_BRIEFING = dataclasses.replace(BRIEFING, state=MeetingState.CLOSED, record_approved=True)

#: (action, meeting) -> who may
MATRIX = {
    (Action.OPEN_SESSION, SESSION): {"secretariat", "chair"},
    (Action.OPEN_SESSION, OPEN): set(),
    (Action.OPEN_SESSION, CLOSED): set(),
    (Action.CLOSE_SESSION, OPEN): {"secretariat", "chair"},
    (Action.CLOSE_SESSION, SESSION): set(),
    (Action.CLOSE_SESSION, CLOSED): set(),
    (Action.GRANT_FLOOR, OPEN): {"secretariat", "chair"},
    (Action.GRANT_FLOOR, SESSION): set(),
    (Action.GRANT_FLOOR, CLOSED): set(),
    (Action.RUN_ROLL_CALL, OPEN): {"secretariat", "chair"},
    (Action.RUN_ROLL_CALL, SESSION): set(),
    (Action.ANSWER_ROLL_CALL, OPEN): {"secretariat", "chair", "delegate"},
    (Action.ANSWER_ROLL_CALL, SESSION): set(),
    (Action.EXCUSE_ABSENCE, SESSION): {"secretariat"},
    (Action.EXCUSE_ABSENCE, OPEN): {"secretariat"},
    (Action.VIEW_REGISTER, OPEN): {"secretariat", "chair"},
    (Action.VIEW_REGISTER, CLOSED): {"secretariat", "chair"},
    # Once the minutes are approved, the register is part of the public record of those invited.
    (Action.VIEW_REGISTER, APPROVED): {"secretariat", "chair", "delegate", "observer"},
}
BRIEFING_MATRIX = {  # a briefing is run by its host commander; the invited office answers the roll
    (Action.OPEN_SESSION, BRIEFING): {"commander"},
    (Action.CLOSE_SESSION, OPEN_BRIEFING): {"commander"},
    (Action.GRANT_FLOOR, OPEN_BRIEFING): {"commander"},
    (Action.RUN_ROLL_CALL, OPEN_BRIEFING): {"commander"},
    (Action.ANSWER_ROLL_CALL, OPEN_BRIEFING): {"commander", "other"},
    (Action.EXCUSE_ABSENCE, OPEN_BRIEFING): {"commander"},
    (Action.VIEW_REGISTER, OPEN_BRIEFING): {"commander"},
    (Action.VIEW_REGISTER, APPROVED_BRIEFING): {"commander", "other"},
}
PEOPLE = {**{p.username: p for p in EVERYONE}, "other": OTHER_GOVERNOR}


@pytest.mark.parametrize(("action", "meeting"), list(MATRIX), ids=lambda v: getattr(v, "value", None))
@pytest.mark.parametrize("who", EVERYONE + [OTHER_GOVERNOR], ids=lambda p: f"{p.username}-{p.office_id}")
def test_session_actions(action: Action, meeting, who) -> None:  # type: ignore[no-untyped-def]
    expected = who.username in MATRIX[(action, meeting)] and who is not OTHER_GOVERNOR
    assert decide(who, action, meeting).allowed is expected, decide(who, action, meeting).reason


@pytest.mark.parametrize(("action", "meeting"), list(BRIEFING_MATRIX), ids=lambda v: getattr(v, "value", None))
@pytest.mark.parametrize("name", list(PEOPLE))
def test_briefing_session_actions(action: Action, meeting, name: str) -> None:  # type: ignore[no-untyped-def]
    expected = name in BRIEFING_MATRIX[(action, meeting)]
    assert decide(PEOPLE[name], action, meeting).allowed is expected


def test_every_session_action_is_in_the_matrix() -> None:
    from meetings.policy import SESSION_ACTIONS

    assert {a for a, _ in MATRIX} == set(SESSION_ACTIONS) == {a for a, _ in BRIEFING_MATRIX}


def test_anonymous_is_refused_every_session_action() -> None:
    from meetings.policy import SESSION_ACTIONS

    for action in SESSION_ACTIONS:
        assert not decide(None, action, OPEN).allowed
    assert GOVERNOR and OBSERVER and COMMANDER and CHAIR and SECRETARIAT  # the roles above
