"""Helpers shared by the services: audit shortcuts, snapshots and input checks."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sqlalchemy import select

from meetings.db import Database, UnitOfWork
from meetings.errors import NotAuthenticated, NotFound, ValidationFailed
from meetings.models import Meeting, Minutes, MinutesState, Person
from meetings.policy import Action, Caller, MeetingAccess, Principal, decide, log_refusal

#: Largest id or count accepted from a request (the databases' 32-bit integer columns).
MAX_INT = 2**31 - 1
_WHOLE_NUMBER = re.compile(r"^[+-]?[0-9]{1,12}$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
OFFICE_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,31}$")


def record(uow: UnitOfWork, caller: Caller, action: str, *, target_type: str = "", target_id: str | int = "",
           details: dict[str, Any] | None = None) -> None:
    """Queue an audit event for the caller in this unit of work."""
    merged = dict(details or {})
    if caller.system:
        merged.setdefault("via", "cli")  # or what acted for the server (e.g. "node": a node's pipe table)
    uow.audit(action, actor_id=caller.actor_id, actor_office_id=caller.office_id, address=caller.address,
              target_type=target_type, target_id=target_id, details=merged)


def principal_of(person: Person) -> Principal:
    return Principal(person_id=person.id, username=person.username, full_name=person.full_name,
                     office_id=person.office_id, roles=person.roles)


def meeting_access(meeting: Meeting) -> MeetingAccess:
    return MeetingAccess(
        meeting_id=meeting.id,
        kind=meeting.kind,
        state=meeting.state,
        host_office_id=meeting.host_office_id,
        invited_office_ids=frozenset(i.office_id for i in meeting.invitations if i.office_id is not None),
        invited_person_ids=frozenset(i.person_id for i in meeting.invitations if i.person_id is not None),
    )


def clean_int(value: object, field: str, low: int = 1, high: int = MAX_INT) -> int:
    """A whole number from a request (an int, or digits in a string) within ``low..high``; anything else,
    a float (1e999), a bool, a huge number (10^30) or text, is a ValidationFailed naming the field."""
    if isinstance(value, str) and _WHOLE_NUMBER.match(value.strip()):
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ValidationFailed(f"{field} must be a whole number", field=field)
    if not low <= number <= high:
        raise ValidationFailed(f"{field} must be between {low} and {high}", field=field)
    return number


async def record_access(db: Database, meeting: Meeting) -> MeetingAccess:
    """``meeting_access`` plus whether its minutes are approved (the record then opens to invitees)."""
    async with db.read() as session:
        state = await session.scalar(select(Minutes.state).where(Minutes.meeting_id == meeting.id))
    return dataclasses.replace(meeting_access(meeting), record_approved=state is MinutesState.APPROVED)


def require_visible(caller: Caller, access: MeetingAccess, missing: str) -> None:
    """What the caller may not see does not exist for them: NotFound (logged), or NotAuthenticated for
    a caller who has not logged in. The server operator sees everything."""
    if caller.system:
        return
    decision = decide(caller.principal, Action.VIEW_MEETING, access)
    if decision:
        return
    log_refusal(caller, Action.VIEW_MEETING, access, decision.reason)
    if caller.principal is None:
        raise NotAuthenticated("log in first")
    raise NotFound(missing)


def _bounded(text: str, field: str, min_length: int, max_length: int) -> str:
    if len(text) < min_length:
        raise ValidationFailed(f"{field} is required", field=field)
    if len(text) > max_length:
        raise ValidationFailed(f"{field} must be at most {max_length} characters", field=field)
    return text


def clean_text(value: object, field: str, *, max_length: int, min_length: int = 1) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text", field=field)
    text = " ".join(value.split())
    return _bounded(text, field, min_length, max_length)


CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_long_text(value: object, field: str, *, max_length: int, min_length: int = 0) -> str:
    """Free text that keeps its line breaks: trimmed, no control characters, length-limited."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text", field=field)
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if CONTROL_CHARACTERS.search(text.replace("\t", " ")):
        raise ValidationFailed(f"{field} contains control characters", field=field)
    return _bounded(text, field, min_length, max_length)


def clean_username(value: object) -> str:
    if not isinstance(value, str) or not USERNAME_RE.match(value.strip().lower()):
        raise ValidationFailed(
            "username must be 3-64 characters: lowercase letters, digits, dot, dash, underscore", field="username"
        )
    return value.strip().lower()
