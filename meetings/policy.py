"""Who may do what to which object: pure functions over plain snapshots.

``decide`` never touches the database, the clock or the network: callers pass a ``Principal`` (the
verified caller) and, for meeting actions, a ``MeetingAccess`` snapshot. ``require`` wraps it for
services and views: it logs a refusal and raises ``PermissionDenied``.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field

from meetings.errors import NotAuthenticated, PermissionDenied
from meetings.models.meetings import MeetingKind, MeetingState
from meetings.models.people import Role

log = logging.getLogger("meetings.policy")


@dataclass(frozen=True)
class Principal:
    """A verified, active account, as the server knows it (never as a request claims it)."""

    person_id: int
    username: str
    full_name: str
    office_id: int
    roles: frozenset[Role]

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class Caller:
    """Who is asking, and from where (for audit). ``principal`` is None before login."""

    principal: Principal | None
    address: str = ""
    #: An operator at the server's own shell (the ``cabinet`` command): trusted, but still audited.
    system: bool = False

    @classmethod
    def cli(cls) -> Caller:
        return cls(principal=None, address="cli", system=True)

    @property
    def actor_id(self) -> int | None:
        return self.principal.person_id if self.principal else None

    @property
    def office_id(self) -> int | None:
        return self.principal.office_id if self.principal else None


@dataclass(frozen=True)
class MeetingAccess:
    """What the policy needs to know about a meeting."""

    meeting_id: int
    kind: MeetingKind
    state: MeetingState
    host_office_id: int
    invited_office_ids: frozenset[int] = field(default_factory=frozenset)
    invited_person_ids: frozenset[int] = field(default_factory=frozenset)
    #: The meeting's minutes are approved: its record (the attendance register too) is public to invitees.
    record_approved: bool = False


class Action(enum.StrEnum):
    VIEW_OFFICES = "office.view"
    MANAGE_OFFICES = "office.manage"
    VIEW_PEOPLE = "person.view"
    MANAGE_PEOPLE = "person.manage"
    VIEW_AUDIT = "audit.view"
    CREATE_CABINET_SESSION = "meeting.create_cabinet_session"
    CREATE_BRIEFING = "meeting.create_briefing"
    VIEW_MEETING = "meeting.view"
    MANAGE_MEETING = "meeting.manage"
    JOIN_MEETING = "meeting.join"
    PUBLISH_MEDIA = "meeting.publish"
    MODERATE_MEETING = "meeting.moderate"
    # The record of a session: decisions, votes, minutes and exports (each follows a rule above, SAME_AS).
    RECORD_DECISION = "meeting.decision.record"
    RUN_VOTE = "meeting.vote.run"
    CAST_BALLOT = "meeting.vote.cast"
    VIEW_MINUTES_DRAFT = "minutes.view_draft"
    EDIT_MINUTES = "minutes.edit"
    APPROVE_MINUTES = "minutes.approve"
    # Running the session (see _decide_session).
    OPEN_SESSION = "session.open"
    CLOSE_SESSION = "session.close"
    GRANT_FLOOR = "session.floor"
    RUN_ROLL_CALL = "session.roll_call"
    ANSWER_ROLL_CALL = "session.answer_roll_call"
    EXCUSE_ABSENCE = "session.excuse"
    VIEW_REGISTER = "session.register"
    #: Before the session: an invited office marks its position on the agenda items.
    SUBMIT_POSITION = "meeting.position.submit"
    #: The tally of every office's positions (those who run the session).
    VIEW_POSITIONS = "meeting.position.tally"
    #: Adopt every unopposed item in one action at the start of the session.
    ADOPT_EN_BLOC = "meeting.adopt_en_bloc"
    #: One's own secret iCalendar feed address (create, rotate, revoke).
    MANAGE_CALENDAR_FEED = "calendar.feed"
    # The recording archive (see _decide_recording).
    #: Search the archive (what is found is narrowed to the meetings the caller may see).
    SEARCH_RECORDINGS = "recording.search"
    #: See a meeting's recordings, play, download and export them: whoever may see the meeting.
    VIEW_RECORDINGS = "recording.view"
    #: Start, pause (an in-camera item) and resume: those who run the session.
    CONTROL_RECORDING = "recording.control"
    #: Delete a recording's files (the row stays as a tombstone): the secretariat.
    DELETE_RECORDING = "recording.delete"
    #: Legal hold and retention class: the secretariat.
    MANAGE_RETENTION = "recording.retention"
    #: Register, list and revoke the offices' provincial nodes and their credentials: the secretariat.
    MANAGE_NODES = "node.manage"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True, "allowed")

#: Actions that need no target object, and the roles that may take them.
ROLE_ACTIONS: dict[Action, frozenset[Role]] = {
    Action.VIEW_OFFICES: frozenset(Role),
    Action.MANAGE_OFFICES: frozenset({Role.SECRETARIAT}),
    Action.VIEW_PEOPLE: frozenset({Role.SECRETARIAT}),
    Action.MANAGE_PEOPLE: frozenset({Role.SECRETARIAT}),
    Action.VIEW_AUDIT: frozenset({Role.SECRETARIAT}),
    Action.CREATE_CABINET_SESSION: frozenset({Role.SECRETARIAT}),
    Action.CREATE_BRIEFING: frozenset({Role.SECRETARIAT, Role.COMMANDER}),
    Action.MANAGE_CALENDAR_FEED: frozenset(Role),
    Action.SEARCH_RECORDINGS: frozenset(Role),
    Action.MANAGE_NODES: frozenset({Role.SECRETARIAT}),
}


#: Record actions and the meeting rule they follow: the chair and the secretariat decide and run votes;
#: whoever may publish (not an observer) casts their site's ballot (the service also checks the site is
#: invited); drafts are for those who run the session; the secretariat (a briefing's host commander)
#: edits and approves; anyone who may see the meeting may read approved minutes (and then the register:
#: VIEW_REGISTER).
SAME_AS: dict[Action, Action] = {
    Action.RECORD_DECISION: Action.MODERATE_MEETING,
    Action.RUN_VOTE: Action.MODERATE_MEETING,
    Action.CAST_BALLOT: Action.PUBLISH_MEDIA,
    Action.VIEW_MINUTES_DRAFT: Action.MODERATE_MEETING,
    Action.EDIT_MINUTES: Action.MANAGE_MEETING,
    Action.APPROVE_MINUTES: Action.MANAGE_MEETING,
    # Recordings: a meeting's recordings exist exactly for those who may see it (a briefing's for its
    # invitees alone); they are started, paused and resumed by those who run the session.
    Action.VIEW_RECORDINGS: Action.VIEW_MEETING,
    Action.CONTROL_RECORDING: Action.MODERATE_MEETING,
}


def is_invited(principal: Principal, meeting: MeetingAccess) -> bool:
    return (
        principal.person_id in meeting.invited_person_ids
        or principal.office_id in meeting.invited_office_ids
        or principal.office_id == meeting.host_office_id
    )


def _decide_meeting(principal: Principal, action: Action, meeting: MeetingAccess) -> Decision:
    if action in SAME_AS:
        return _decide_meeting(principal, SAME_AS[action], meeting)
    invited = is_invited(principal, meeting)
    # A cabinet session is the secretariat's own business; a briefing belongs to its invitees alone.
    secretariat_sees = meeting.kind is MeetingKind.CABINET_SESSION and principal.has(Role.SECRETARIAT)
    if action is Action.VIEW_MEETING:
        return ALLOW if invited or secretariat_sees else Decision(False, "not invited to this meeting")
    if action is Action.MANAGE_MEETING:
        if meeting.kind is MeetingKind.CABINET_SESSION:
            if principal.has(Role.SECRETARIAT):
                return ALLOW
            return Decision(False, "only the secretariat manages cabinet sessions")
        host_member = principal.office_id == meeting.host_office_id
        if host_member and (principal.has(Role.COMMANDER) or principal.has(Role.SECRETARIAT)):
            return ALLOW
        return Decision(False, "only the host office's commander manages a briefing")
    if action is Action.MODERATE_MEETING:
        # Runs the live session: the secretariat and an invited chair; for a briefing, its host commander.
        if meeting.kind is MeetingKind.CABINET_SESSION:
            if principal.has(Role.SECRETARIAT) or (principal.has(Role.CHAIR) and invited):
                return ALLOW
            return Decision(False, "only the secretariat and the chair run a cabinet session")
        return _decide_meeting(principal, Action.MANAGE_MEETING, meeting)
    if action in SESSION_ACTIONS:
        return _decide_session(principal, action, meeting)
    if action in ARCHIVE_ACTIONS:
        return _decide_archive(principal, action, meeting)
    if action in (Action.JOIN_MEETING, Action.PUBLISH_MEDIA):
        if meeting.state in (MeetingState.CLOSED, MeetingState.CANCELLED):
            return Decision(False, f"the meeting is {meeting.state.value}")
        if not (invited or secretariat_sees):
            return Decision(False, "not invited to this meeting")
        if action is Action.PUBLISH_MEDIA and principal.roles <= {Role.OBSERVER}:
            return Decision(False, "observers watch and listen only")
        return ALLOW
    if action is Action.SUBMIT_POSITION:
        # Positions belong to an invited office (not to a person invited alone, nor to the host).
        if principal.office_id not in meeting.invited_office_ids:
            return Decision(False, "only an invited office marks positions")
        if principal.roles <= {Role.OBSERVER}:
            return Decision(False, "observers do not mark positions")
        if meeting.state is not MeetingState.SCHEDULED:
            return Decision(False, f"positions are marked before the session; it is {meeting.state.value}")
        return ALLOW
    if action in (Action.VIEW_POSITIONS, Action.ADOPT_EN_BLOC):
        # The tally steers the session (what is adopted at once, who speaks): those who run it.
        decision = _decide_meeting(principal, Action.MODERATE_MEETING, meeting)
        if not decision or action is Action.VIEW_POSITIONS:
            return decision
        if meeting.state in (MeetingState.CLOSED, MeetingState.CANCELLED):
            return Decision(False, f"the meeting is {meeting.state.value}")
        return ALLOW
    return Decision(False, f"{action.value} does not apply to a meeting")


SESSION_ACTIONS = frozenset({Action.OPEN_SESSION, Action.CLOSE_SESSION, Action.GRANT_FLOOR, Action.RUN_ROLL_CALL,
                             Action.ANSWER_ROLL_CALL, Action.EXCUSE_ABSENCE, Action.VIEW_REGISTER})
_FINISHED = (MeetingState.CLOSED, MeetingState.CANCELLED)


def _decide_session(principal: Principal, action: Action, meeting: MeetingAccess) -> Decision:
    """The live session: moderators (secretariat, chair; a briefing's host commander) run it; the
    secretariat (the briefing's managers) keeps the record of excused absences."""
    if action is Action.EXCUSE_ABSENCE:
        return _decide_meeting(principal, Action.MANAGE_MEETING, meeting)
    if action is Action.VIEW_REGISTER:
        # One rule for the live register and its export: those who run the session at any time; every
        # invitee once the minutes (which carry the same attendance) are approved.
        if _decide_meeting(principal, Action.MANAGE_MEETING, meeting):
            return ALLOW
        if meeting.record_approved:
            return _decide_meeting(principal, Action.VIEW_MEETING, meeting)
        return _decide_meeting(principal, Action.MODERATE_MEETING, meeting)
    if action is Action.ANSWER_ROLL_CALL:
        if meeting.state is not MeetingState.OPEN:
            return Decision(False, "the session is not open")
        return _decide_meeting(principal, Action.PUBLISH_MEDIA, meeting)
    moderate = _decide_meeting(principal, Action.MODERATE_MEETING, meeting)
    if not moderate:
        return moderate
    if action is Action.OPEN_SESSION:
        if meeting.state is not MeetingState.SCHEDULED:
            return Decision(False, f"the meeting is {meeting.state.value}")
        return ALLOW
    if meeting.state in _FINISHED:
        return Decision(False, f"the meeting is {meeting.state.value}")
    if action in (Action.GRANT_FLOOR, Action.RUN_ROLL_CALL, Action.CLOSE_SESSION) \
            and meeting.state is not MeetingState.OPEN:
        return Decision(False, "the session is not open")
    return ALLOW


ARCHIVE_ACTIONS = frozenset({Action.DELETE_RECORDING, Action.MANAGE_RETENTION})


def _decide_archive(principal: Principal, action: Action, meeting: MeetingAccess) -> Decision:
    """Deleting recordings and how long they are kept: the secretariat, for a meeting it may see (a
    briefing's recordings only when the secretariat member is invited to it: the archive keeps no back
    door into briefings). Neither the chair nor a briefing's host commander decides what is destroyed."""
    if not principal.has(Role.SECRETARIAT):
        return Decision(False, "only the secretariat deletes recordings or sets their retention")
    return _decide_meeting(principal, Action.VIEW_MEETING, meeting)


def decide(principal: Principal | None, action: Action, target: MeetingAccess | None = None) -> Decision:
    """May ``principal`` take ``action`` (on ``target``)? Pure; the single source of permission truth."""
    if principal is None:
        return Decision(False, "not logged in")
    if not principal.roles:
        return Decision(False, "the account has no role")
    if action in ROLE_ACTIONS:
        if principal.roles & ROLE_ACTIONS[action]:
            return ALLOW
        return Decision(False, f"requires role {' or '.join(sorted(r.value for r in ROLE_ACTIONS[action]))}")
    if target is None:
        return Decision(False, f"{action.value} needs a target")
    return _decide_meeting(principal, action, target)


def log_refusal(caller: Caller, action: Action, target: MeetingAccess | None, reason: str) -> None:
    log.info(
        "permission refused",
        extra={
            "event": "permission.refused",
            "action": action.value,
            "actor_id": caller.actor_id,
            "target": target.meeting_id if target else None,
            "reason": reason,
            "address": caller.address,
        },
    )


def require(caller: Caller, action: Action, target: MeetingAccess | None = None) -> Principal | None:
    """Raise (and log) unless the caller may take the action; return the principal when allowed.

    The server operator (``Caller.cli()``) is allowed everything and gets None back.
    """
    if caller.system:
        return None
    decision = decide(caller.principal, action, target)
    if decision.allowed:
        return caller.principal
    log_refusal(caller, action, target, decision.reason)
    if caller.principal is None:
        raise NotAuthenticated("log in first")
    raise PermissionDenied(decision.reason)
