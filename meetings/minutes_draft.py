"""The minutes drafted from the record of a session: pure functions over plain snapshots.

``draft`` turns what happened (items with their times, who held the floor, decisions, votes, the
attendance register) into the JSON body of the minutes; ``merge_edits`` carries the secretariat's
edited text over a redraft; ``canonical`` and ``digest`` give the bytes whose SHA-256 seals them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from meetings.attendance import Presence, Quorum, Register

SCHEMA = 1


@dataclass(frozen=True)
class OfficeInfo:
    id: int
    code: str
    name_en: str
    name_km: str


@dataclass(frozen=True)
class Speech:
    person: str
    office_id: int
    started_at: dt.datetime
    ended_at: dt.datetime | None


@dataclass(frozen=True)
class BallotInfo:
    office_id: int
    choice: str


@dataclass(frozen=True)
class VoteInfo:
    id: int
    question: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    sites_present: int
    sites_invited: int
    quorum_required: int
    quorum_met: bool
    ballots: tuple[BallotInfo, ...] = ()


@dataclass(frozen=True)
class DecisionInfo:
    outcome: str
    text: str
    en_bloc: bool
    vote_id: int | None


@dataclass(frozen=True)
class ItemInfo:
    id: int
    position: int
    title: str
    presenter_office_id: int | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    speeches: tuple[Speech, ...] = ()
    decision: DecisionInfo | None = None
    votes: tuple[VoteInfo, ...] = ()


@dataclass(frozen=True)
class Record:
    meeting_id: int
    title: str
    kind: str
    host_office_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    opened_at: dt.datetime | None
    closed_at: dt.datetime | None
    items: tuple[ItemInfo, ...]
    register: Register
    quorum: Quorum
    site_ids: frozenset[int]
    offices: dict[int, OfficeInfo]
    people: dict[int, str] = field(default_factory=dict)
    #: office id -> reason, and person id -> reason
    excused_offices: dict[int, str] = field(default_factory=dict)
    excused_people: dict[int, str] = field(default_factory=dict)
    #: The session's sealed recordings: (recording id, started, ended, duration ms, manifest SHA-256).
    recordings: tuple[tuple[int, dt.datetime, dt.datetime | None, int, str], ...] = ()


def _t(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds") if value else None


def _minutes(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds / 60))


def _office(record: Record, office_id: int | None) -> dict[str, Any] | None:
    if office_id is None:
        return None
    o = record.offices.get(office_id)
    if o is None:
        return {"id": office_id, "code": "", "name_en": f"#{office_id}", "name_km": f"#{office_id}"}
    return {"id": o.id, "code": o.code, "name_en": o.name_en, "name_km": o.name_km}


def _presence(p: Presence | None) -> dict[str, Any]:
    if p is None or not p.attended:
        return {"intervals": [], "first_arrival": None, "last_departure": None, "minutes_present": 0,
                "late_minutes": None, "left_early_minutes": None}
    return {"intervals": [[_t(i.start), _t(i.end)] for i in p.intervals], "first_arrival": _t(p.first_arrival),
            "last_departure": _t(p.last_departure), "minutes_present": _minutes(p.seconds),
            "late_minutes": _minutes(p.late_seconds), "left_early_minutes": _minutes(p.left_early_seconds)}


def site_status(presence: Presence | None, excused: bool) -> str:
    """present | late | left_early | late_left_early | excused | absent."""
    if presence is None or not presence.attended:
        return "excused" if excused else "absent"
    late = bool(presence.late_seconds)
    early = bool(presence.left_early_seconds)
    if late and early:
        return "late_left_early"
    return "late" if late else "left_early" if early else "present"


def attendance(record: Record) -> dict[str, Any]:
    reg = record.register
    sites = []
    for office_id in sorted(record.site_ids | set(reg.sites),
                            key=lambda o: (record.offices[o].name_en if o in record.offices else "", o)):
        presence = reg.sites.get(office_id)
        excused = office_id in record.excused_offices
        people = []
        for person_id, office in sorted(reg.office_of.items(), key=lambda kv: record.people.get(kv[0], "")):
            if office != office_id:
                continue
            people.append({"person_id": person_id, "name": record.people.get(person_id, f"#{person_id}"),
                           "excused": record.excused_people.get(person_id), **_presence(reg.people.get(person_id))})
        sites.append({"office": _office(record, office_id), "invited": office_id in record.site_ids,
                      "status": site_status(presence, excused), "excused": record.excused_offices.get(office_id),
                      **_presence(presence), "people": people})
    q = record.quorum
    return {"quorum": {"invited": q.invited, "present": q.present, "required": q.required, "met": q.met},
            "sites": sites}


def _vote(record: Record, v: VoteInfo) -> dict[str, Any]:
    choices = [b.choice for b in v.ballots]
    return {"id": v.id, "question": v.question, "opened_at": _t(v.opened_at), "closed_at": _t(v.closed_at),
            "quorum": {"present": v.sites_present, "invited": v.sites_invited, "required": v.quorum_required,
                       "met": v.quorum_met},
            "tally": {"yes": choices.count("yes"), "no": choices.count("no"), "abstain": choices.count("abstain")},
            "ballots": [{"office": _office(record, b.office_id), "choice": b.choice}
                        for b in sorted(v.ballots, key=lambda b: _office(record, b.office_id)["name_en"])]}  # type: ignore[index]


def _item(record: Record, item: ItemInfo) -> dict[str, Any]:
    speakers = [{"person": s.person, "office": _office(record, s.office_id), "from": _t(s.started_at),
                 "to": _t(s.ended_at),
                 "seconds": int((s.ended_at - s.started_at).total_seconds()) if s.ended_at else None}
                for s in sorted(item.speeches, key=lambda s: s.started_at)]
    d = item.decision
    return {"id": item.id, "position": item.position, "title": item.title,
            "presenter": _office(record, item.presenter_office_id), "started_at": _t(item.started_at),
            "ended_at": _t(item.ended_at), "speakers": speakers,
            "decision": None if d is None else {"outcome": d.outcome, "text": d.text, "en_bloc": d.en_bloc,
                                                "vote_id": d.vote_id},
            "votes": [_vote(record, v) for v in sorted(item.votes, key=lambda v: v.opened_at)],
            "summary": ""}


def draft(record: Record) -> dict[str, Any]:
    """The body of the minutes, as drafted from the record (no edited text yet)."""
    return {
        "schema": SCHEMA,
        "meeting": {"id": record.meeting_id, "title": record.title, "kind": record.kind,
                    "host": _office(record, record.host_office_id), "starts_at": _t(record.starts_at),
                    "ends_at": _t(record.ends_at), "opened_at": _t(record.opened_at),
                    "closed_at": _t(record.closed_at)},
        "items": [_item(record, i) for i in sorted(record.items, key=lambda i: i.position)],
        "attendance": attendance(record),
        "note": "",
        # Only when the session was recorded: minutes of earlier sessions keep their exact body.
        **({"recordings": [{"id": rid, "started_at": _t(start), "ended_at": _t(end), "duration_ms": ms,
                            "manifest_sha256": sha} for rid, start, end, ms, sha in record.recordings]}
           if record.recordings else {}),
    }


def merge_edits(fresh: dict[str, Any], edited: dict[str, Any]) -> dict[str, Any]:
    """A redraft keeps the secretariat's summaries (per item id) and general note."""
    summaries = {i["id"]: i.get("summary", "") for i in edited.get("items", [])}
    out = json.loads(json.dumps(fresh))
    for item in out["items"]:
        item["summary"] = summaries.get(item["id"], "")
    out["note"] = edited.get("note", "")
    return out


def canonical(body: dict[str, Any]) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 text (not \\u escapes)."""
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()
