"""Plain-JSON views of domain objects for the API. Never includes password hashes or tokens."""

from __future__ import annotations

from typing import Any

from meetings.models import AuditEvent, Meeting, Office, Person
from meetings.policy import Principal


def office(o: Office) -> dict[str, Any]:
    return {"id": o.id, "code": o.code, "kind": o.kind.value, "name_en": o.name_en, "name_km": o.name_km,
            "active": o.active}


def person(p: Person) -> dict[str, Any]:
    return {"id": p.id, "username": p.username, "full_name": p.full_name, "office_id": p.office_id,
            "office_code": p.office.code if p.office else None, "roles": sorted(r.value for r in p.roles),
            "active": p.active, "created_at": p.created_at.isoformat()}


def me(p: Principal) -> dict[str, Any]:
    return {"id": p.person_id, "username": p.username, "full_name": p.full_name, "office_id": p.office_id,
            "roles": sorted(r.value for r in p.roles)}


def meeting(m: Meeting) -> dict[str, Any]:
    return {
        "id": m.id, "title": m.title, "kind": m.kind.value, "state": m.state.value,
        "host_office_id": m.host_office_id, "starts_at": m.starts_at.isoformat(), "ends_at": m.ends_at.isoformat(),
        "invited_office_ids": sorted(i.office_id for i in m.invitations if i.office_id is not None),
        "invited_person_ids": sorted(i.person_id for i in m.invitations if i.person_id is not None),
    }


def audit_event(e: AuditEvent) -> dict[str, Any]:
    return {"seq": e.seq, "created_at": e.created_at.isoformat(), "actor_id": e.actor_id,
            "actor_office_id": e.actor_office_id, "address": e.address, "action": e.action,
            "target_type": e.target_type, "target_id": e.target_id, "details": e.details, "hash": e.hash}
