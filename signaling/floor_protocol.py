"""Client events for running the session (see signaling/floor.py), kept apart from protocol.py.

    session   {action: open | close}                          moderators  -> {session}
    floor     {action: grant, participant_id, limit_seconds?} moderators  -> {floor}
              {action: revoke}                                moderators
              {action: yield}                                 the holder
    roll_call {action: start | close}                         moderators  -> {roll_call}
              {action: answer}                                participants who may speak (one answer per office)
    excuse    {office_id | person_id, reason}                 the secretariat (the briefing's managers)
    register  {}                                              moderators  -> {register}
    recording {action: pause | resume, reason?}               moderators  -> {recording} (in-camera items)

Server events: ``session`` {state, opened_at, closed_at}, ``floor`` {holder | null}, ``quorum``
{invited, present, required, met, percent} (everyone), ``register`` {...} (moderators), ``roll_call``
{id, open, started_at, answered: [office_id], sites?: [...] (moderators)} or null. ``recording`` {state: recording | paused | off, recording_id, alarm} (everyone: every page shows
that the session is being recorded).
"""

from __future__ import annotations

from typing import Any

from signaling.errors import InvalidMessage
from signaling.validation import Check, Schema, identifier, integer, nullable, one_of

MAX_LIMIT_SECONDS = 4 * 3600


def text(max_length: int) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > max_length:
            raise InvalidMessage(f"{name} must be text of 1 to {max_length} characters")
        return value

    return check


FLOOR_SCHEMAS: dict[str, Schema] = {
    "session": Schema(required={"action": one_of("open", "close")}),
    "floor": Schema(required={"action": one_of("grant", "revoke", "yield")},
                    optional={"participant_id": identifier(), "limit_seconds": nullable(integer(1, MAX_LIMIT_SECONDS))}),
    "roll_call": Schema(required={"action": one_of("start", "close", "answer")}),
    "excuse": Schema(required={"reason": text(500)},
                     optional={"office_id": integer(1, 2**31), "person_id": integer(1, 2**31)}),
    "register": Schema(),
    "recording": Schema(required={"action": one_of("pause", "resume")}, optional={"reason": text(500)}),
}
FLOOR_EVENTS = frozenset(FLOOR_SCHEMAS)
