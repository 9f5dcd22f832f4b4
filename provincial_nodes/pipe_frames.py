"""The frames of a node's pipe as the far end sends them (provincial_nodes/pipe_link.py lists them): each
parser checks one part of a frame and raises :class:`PipeRefused` with what is wrong, before anything is
applied."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from meetings.models import MeetingState

from .errors import NodeError

#: The most participants, tracks or departures one frame may list.
MAX_TABLE_ENTRIES = 512


class PipeRefused(NodeError):
    """The far end asked for what it may not have; nothing changed."""


def meeting_id_of(frame: dict[str, Any]) -> int:
    value = frame.get("meeting_id")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise PipeRefused("meeting_id must be a positive integer")
    return value


def entries_of(frame: dict[str, Any], name: str) -> list[Any]:
    value = frame.get(name)
    if not isinstance(value, list) or len(value) > MAX_TABLE_ENTRIES:
        raise PipeRefused(f"{name} must be a list of at most {MAX_TABLE_ENTRIES}")
    return value


def aware_time(value: object) -> dt.datetime | None:
    """An ISO 8601 time with a zone from the far end, or None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


@dataclass(frozen=True)
class HostSession:
    """The session state a table of the hosting end carries."""

    state: MeetingState
    opened_at: dt.datetime | None
    closed_at: dt.datetime | None
    #: Who holds the host's floor (FLOOR_FIELDS), or None.
    floor: dict[str, Any] | None = None


#: What a table says of the host's floor holder: what the far end's pages show (the time left is theirs to
#: count from ``granted_at``, so the table does not change every second).
FLOOR_FIELDS: dict[str, tuple[type, ...]] = {
    "participant_id": (str, type(None)), "person_id": (int,), "full_name": (str,), "office_name": (str, type(None)),
    "office_name_km": (str, type(None)), "granted_at": (int, float), "limit_seconds": (int, type(None))}


def floor_of(value: object) -> dict[str, Any] | None:
    """The host's floor holder in a table's session (None: nobody); PipeRefused if malformed."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(FLOOR_FIELDS):
        raise PipeRefused(f"a table's floor holder has exactly {sorted(FLOOR_FIELDS)}")
    for name, types in FLOOR_FIELDS.items():
        field_value = value[name]
        if not isinstance(field_value, types) or isinstance(field_value, bool) or (
                isinstance(field_value, str) and len(field_value) > 200):
            raise PipeRefused(f"a table's floor holder's {name} is not what it should be")
    return dict(value)


def session_of(frame: dict[str, Any]) -> HostSession | None:
    """The host's session state in a ``pipe_table`` (None: the far end does not host); PipeRefused if malformed."""
    value = frame.get("session")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PipeRefused("a table's session is an object")
    try:
        state = MeetingState(value.get("state"))
    except ValueError:
        raise PipeRefused(f"a table's session state is one of {[s.value for s in MeetingState]}") from None
    times = [value.get(name) for name in ("opened_at", "closed_at")]
    parsed = [aware_time(t) for t in times]
    if any(t is not None and p is None for t, p in zip(times, parsed, strict=True)):
        raise PipeRefused("a table's session times are ISO times with a zone")
    return HostSession(state, parsed[0], parsed[1], floor_of(value.get("floor")))


def departures_of(frame: dict[str, Any]) -> dict[str, dt.datetime]:
    """``{participant id: when they left}`` of a ``pipe_departed`` frame (aware times, none in the future)."""
    value = frame.get("departed")
    if not isinstance(value, dict) or len(value) > MAX_TABLE_ENTRIES:
        raise PipeRefused(f"departed must be an object of at most {MAX_TABLE_ENTRIES} entries")
    now = dt.datetime.now(dt.UTC)
    out: dict[str, dt.datetime] = {}
    for participant_id, when in value.items():
        at = aware_time(when)
        if at is None or not 0 < len(participant_id) <= 64:
            raise PipeRefused("departed maps participant ids to ISO 8601 times with a zone")
        out[participant_id] = min(at, now)
    return out


def joined_iso(record: Any) -> str | None:
    """When an attendance record's interval began (the participant's local join), for the far end."""
    return record.joined_at.isoformat() if record is not None else None


def departures_frame(meeting_id: int, departures: dict[str, dt.datetime]) -> dict[str, Any]:
    return {"type": "pipe_departed", "meeting_id": meeting_id,
            "departed": {pid: at.isoformat() for pid, at in departures.items()}}
