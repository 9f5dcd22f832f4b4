"""The people in a pipe's tables: what the centre takes of a node's, what a node keeps of the centre's.

A node's table names its people by participant id and person id with their switches (muted, camera
off); the centre never takes a name, an office or a role from a node: they join its room under what
its own database says of that person (meetings/services/nodes.py ``node_grants``). A node shows the
centre's entries as they come, once their shape is checked.
"""

from __future__ import annotations

import re
from typing import Any

from .pipe_frames import PipeRefused

#: A participant id as signaling makes them (signaling/participant.py): ``p<person id>-<hex>``.
PARTICIPANT_ID = re.compile(r"^p(\d{1,18})-[0-9a-f]{1,32}$")
_FLAGS = ("audio_muted", "video_muted", "hand_raised")
_TEXTS = ("full_name", "office_code", "office_name", "office_name_km")


def claimed_person(entry: dict[str, Any]) -> tuple[str, int]:
    """The participant id and person id a node's entry claims (the id must carry the person id)."""
    participant_id, person_id = entry.get("participant_id"), entry.get("person_id")
    match = PARTICIPANT_ID.match(participant_id) if isinstance(participant_id, str) else None
    if match is None or not isinstance(person_id, int) or isinstance(person_id, bool) or int(match[1]) != person_id:
        raise PipeRefused("a participant is named p<person id>-<hex> with that person_id")
    return participant_id, person_id


def checked_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A centre's entry as a node keeps it: the known fields, of the right types."""
    participant_id, person_id = entry.get("participant_id"), entry.get("person_id")
    if not isinstance(participant_id, str) or not 0 < len(participant_id) <= 64:
        raise PipeRefused("participant_id must be 1..64 characters")
    if not isinstance(person_id, int) or isinstance(person_id, bool):
        raise PipeRefused("person_id must be an integer")
    texts = {name: entry.get(name) for name in _TEXTS}
    if not all(isinstance(v, str) and len(v) <= 300 for v in texts.values()):
        raise PipeRefused("names are text of at most 300 characters")
    roles = entry.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) and len(r) <= 32 for r in roles[:8]):
        raise PipeRefused("roles are a list of names")
    office_id = entry.get("office_id")
    return {"participant_id": participant_id, "person_id": person_id, **texts,
            "office_id": office_id if isinstance(office_id, int) and not isinstance(office_id, bool) else None,
            "roles": roles[:8], **{flag: entry.get(flag) is True for flag in _FLAGS},
            "force_muted": entry.get("force_muted") is True, "quality": {}, "client": "room",
            "via": str(entry.get("via") or "centre")[:64]}
