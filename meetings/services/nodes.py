"""Provincial nodes: the secretariat registers an office's node and revokes it; a node authenticates with
its credential.

A credential is ``cabn_`` and 43 URL-safe characters (256 random bits), shown once when the node is
registered. The database keeps its SHA-256 and its first 13 characters (the public prefix it is named
by in lists, logs and the audit trail); the credential itself is never stored, logged or audited.
Authentication finds the node by the public prefix and compares the hashes in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import or_, select

from meetings.db import Database, UnitOfWork
from meetings.errors import Conflict, NotAuthenticated, NotFound, StorageError, ValidationFailed
from meetings.models import Invitation, Meeting, MeetingState, Office, Person, ProvincialNode
from meetings.models.base import utcnow
from meetings.policy import Action, Caller, decide, require
from meetings.services.common import clean_int, clean_text, meeting_access, principal_of, record
from meetings.services.meetings import JoinGrant
from meetings.tokens import JoinClaims
from meetings.services.refusals import RefusalLog

log = logging.getLogger("meetings.nodes")

CREDENTIAL_PREFIX = "cabn_"
CREDENTIAL_RE = re.compile(r"^cabn_[A-Za-z0-9_-]{43}$")
#: ``cabn_`` and 8 characters (48 of the 256 bits): the public name of a credential.
DISPLAY_LENGTH = len(CREDENTIAL_PREFIX) + 8
TARGET = "provincial_node"
#: The office snapshot's format (provincial_nodes/replica.py reads it).
SNAPSHOT_VERSION = 1
#: Compared against when no node has the prefix, so a miss costs what a hit does.
_NO_HASH = "0" * 64
#: The meetings a node's pipe carries...
PIPE_STATES: tuple[MeetingState, ...] = (MeetingState.SCHEDULED, MeetingState.OPEN)
#: ...and those it may upload a recording of (a session's recording is sealed once the session closed).
RECORDING_STATES: tuple[MeetingState, ...] = (MeetingState.SCHEDULED, MeetingState.OPEN, MeetingState.CLOSED)


def new_credential() -> str:
    return CREDENTIAL_PREFIX + secrets.token_urlsafe(32)


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode("ascii")).hexdigest()


def display_prefix(credential: str) -> str:
    return credential[:DISPLAY_LENGTH]


class NodeService:
    def __init__(self, db: Database, refusals: RefusalLog | None = None) -> None:
        self.db = db
        self.refusals = refusals

    # -- the secretariat's registry ------------------------------------------------------------------
    async def list(self, caller: Caller, *, include_revoked: bool = True) -> Sequence[ProvincialNode]:
        require(caller, Action.MANAGE_NODES)
        async with self.db.read() as session:
            query = select(ProvincialNode).order_by(ProvincialNode.id)
            if not include_revoked:
                query = query.where(ProvincialNode.revoked_at.is_(None))
            return (await session.execute(query)).scalars().all()

    async def get(self, caller: Caller, node_id: object) -> ProvincialNode:
        require(caller, Action.MANAGE_NODES)
        return await self._load(clean_int(node_id, "node_id"))

    async def add(self, caller: Caller, *, office_id: object, name: object) -> tuple[ProvincialNode, str]:
        """Register a node for an active office; return it and its credential (the only time it exists
        outside the node: show it once, then forget it)."""
        require(caller, Action.MANAGE_NODES)
        clean_name = clean_text(name, "name", max_length=64)
        async with self.db.write() as uow:
            office = await uow.session.get(Office, clean_int(office_id, "office_id"))
            if office is None or not office.active:
                raise ValidationFailed("no such active office", field="office_id")
            taken = await uow.session.scalar(select(ProvincialNode.id).where(
                ProvincialNode.office_id == office.id, ProvincialNode.name == clean_name,
                ProvincialNode.revoked_at.is_(None)))
            if taken:
                raise Conflict(f"{office.code} has an active node named {clean_name!r}", field="name")
            credential = await self._unused_credential(uow)
            node = ProvincialNode(office_id=office.id, name=clean_name, credential_prefix=display_prefix(credential),
                                  credential_hash=credential_hash(credential), created_at=utcnow(),
                                  created_by_id=caller.actor_id)
            uow.session.add(node)
            await uow.session.flush()
            record(uow, caller, "node.add", target_type=TARGET, target_id=node.id,
                   details={"office": office.code, "name": clean_name, "credential_prefix": node.credential_prefix})
        return await self._load(node.id), credential

    async def revoke(self, caller: Caller, node_id: object) -> ProvincialNode:
        """Revoke a node's credential: its next authentication (every reconnect) is refused."""
        require(caller, Action.MANAGE_NODES)
        number = clean_int(node_id, "node_id")
        async with self.db.write() as uow:
            node = await uow.session.get(ProvincialNode, number)
            if node is None:
                raise NotFound("no such node")
            if node.revoked_at is not None:
                raise Conflict(f"node {node.id} is already revoked")
            node.revoked_at = utcnow()
            node.revoked_by_id = caller.actor_id
            record(uow, caller, "node.revoke", target_type=TARGET, target_id=node.id,
                   details={"office": node.office.code, "name": node.name,
                            "credential_prefix": node.credential_prefix})
        return await self._load(number)

    # -- a node dialling in ----------------------------------------------------------------------------
    async def authenticate(self, credential: object, *, address: str = "") -> ProvincialNode:
        """The active node whose credential this is (its ``last_seen_at`` updated); NotAuthenticated for
        a malformed, unknown or revoked credential, or a node of an office no longer active. Refusals
        are logged and counted into the audit trail by the node's public prefix or id, never with the
        credential."""
        if not isinstance(credential, str) or not CREDENTIAL_RE.fullmatch(credential):
            self._refuse(address, "malformed", None)
            raise NotAuthenticated("malformed node credential")
        digest = credential_hash(credential)
        async with self.db.read() as session:
            node = await session.scalar(select(ProvincialNode).where(
                ProvincialNode.credential_prefix == display_prefix(credential)))
        if not hmac.compare_digest(node.credential_hash if node else _NO_HASH, digest) or node is None:
            self._refuse(address, "unknown", None)
            raise NotAuthenticated("unknown node credential")
        if node.revoked_at is not None:
            self._refuse(address, "revoked", node)
            raise NotAuthenticated(f"node {node.credential_prefix} was revoked")
        if not node.office.active:
            self._refuse(address, "office_inactive", node)
            raise NotAuthenticated(f"the office of node {node.credential_prefix} is not active")
        node.last_seen_at = utcnow()
        try:
            async with self.db.write() as uow:
                seen = await uow.session.get(ProvincialNode, node.id)
                if seen is not None:
                    seen.last_seen_at = node.last_seen_at
        except StorageError:  # the node is who it says; a full disk must not cut a province off
            log.warning("could not record a node's last contact", extra={"event": "node.last_seen_failed",
                                                                        "node_id": node.id})
        return node

    # -- what a node keeps of its office ---------------------------------------------------------------
    async def office_snapshot(self, node: ProvincialNode) -> dict[str, Any]:
        """What a node replicates to sign its office's people in and let them join while the centre is
        unreachable (a read-only domain controller): its office; that office's accounts with their
        password hashes and roles; the meetings the office hosts or is invited to (itself or one of its
        people), with their agenda and the invitations of this office only; and the directory entries
        (code, names) of the other offices those meetings name. Nobody else's people, and no meeting
        the office is not part of: a node of one office never learns another command's briefing."""
        async with self.db.read() as session:
            office = await session.get(Office, node.office_id)
            people = (await session.execute(
                select(Person).where(Person.office_id == node.office_id).order_by(Person.id))).scalars().all()
            if office is None:
                raise NotFound("the node's office is gone")
            person_ids = {p.id for p in people}
            invited = select(Invitation.meeting_id).where(or_(
                Invitation.office_id == office.id, Invitation.person_id.in_(person_ids or {-1})))
            meetings = (await session.execute(select(Meeting).where(or_(
                Meeting.host_office_id == office.id, Meeting.id.in_(invited))).order_by(Meeting.id))).scalars().all()
            referenced = {m.host_office_id for m in meetings} | {
                item.presenter_office_id for m in meetings for item in m.agenda if item.presenter_office_id}
            others = (await session.execute(select(Office).where(Office.id.in_(referenced - {office.id}))
                                            .order_by(Office.id))).scalars().all()
            return {
                "version": SNAPSHOT_VERSION,
                "generated_at": utcnow().isoformat(),
                "office": _office(office),
                "people": [{"id": p.id, "username": p.username, "full_name": p.full_name, "office_id": p.office_id,
                            "password_hash": p.password_hash, "active": p.active,
                            "password_changed_at": p.password_changed_at.isoformat(),
                            "roles": sorted(r.value for r in p.roles)} for p in people],
                "offices": [_office(o) for o in others],
                "meetings": [_meeting(m, office.id, person_ids) for m in meetings],
            }

    async def still_valid(self, node_id: int) -> bool:
        """Whether a connected node may stay connected (not revoked, its office active)."""
        async with self.db.read() as session:
            node = await session.get(ProvincialNode, node_id)
            return node is not None and node.revoked_at is None and node.office.active

    async def active_node(self, node_id: int) -> ProvincialNode:
        """A connected node, again from the database; NotAuthenticated once revoked."""
        node = await self._load(node_id)
        if node.revoked_at is not None or not node.office.active:
            raise NotAuthenticated(f"node {node.credential_prefix} was revoked")
        return node

    # -- what a node's pipe may carry --------------------------------------------------------------------
    async def node_meeting(self, node_id: int, meeting_id: object, *, address: str = "",
                           states: Collection[MeetingState] = PIPE_STATES, purpose: str = "pipe") -> Meeting:
        """A meeting a node's pipe may carry: one its office hosts or is invited to (itself or one of its
        people), scheduled or open (``states``: :data:`RECORDING_STATES` for a recording the node uploads,
        which is sealed after its session closed). Any other meeting does not exist for the node (NotFound:
        it learns nothing of another command's briefing), and the attempt is counted as a refusal
        (``purpose`` names the route in the count)."""
        node = await self.active_node(node_id)
        mid = clean_int(meeting_id, "meeting_id")
        async with self.db.read() as session:
            meeting = await session.get(Meeting, mid)
            invited = await session.scalar(
                select(Invitation.id).outerjoin(Person, Person.id == Invitation.person_id)
                .where(Invitation.meeting_id == mid,
                       or_(Invitation.office_id == node.office_id, Person.office_id == node.office_id)).limit(1))
        if meeting is None or meeting.state not in states or not (
                meeting.host_office_id == node.office_id or invited is not None):
            self._refuse_pipe(node, address, f"meeting {mid}", purpose)
            raise NotFound("no such meeting")
        return meeting

    async def node_grants(self, node_id: int, meeting: Meeting, person_ids: Sequence[int], *,
                          address: str = "") -> dict[int, JoinGrant]:
        """What lets the people a node says are in ``meeting`` behind it join it at the centre: each must be
        an active person of the node's office whom the join policy lets in, exactly as if they had joined
        at the centre with a join token. One that is not refuses the whole list (NotFound, counted as a
        refusal); nothing about them comes from the node but their id."""
        node = await self.active_node(node_id)
        wanted = set(person_ids)
        async with self.db.read() as session:
            people = (await session.execute(select(Person).where(
                Person.id.in_(wanted or {-1}), Person.office_id == node.office_id,
                Person.active.is_(True)))).unique().scalars().all()
        access = meeting_access(meeting)
        now = int(utcnow().timestamp())
        grants: dict[int, JoinGrant] = {}
        for person in people:
            principal = principal_of(person)
            if decide(principal, Action.JOIN_MEETING, access):
                claims = JoinClaims(meeting_id=meeting.id, person_id=person.id, office_id=person.office_id,
                                    roles=tuple(r.value for r in principal.roles), issued_at=now, expires_at=now,
                                    token_id=f"node-{node.id}")
                grants[person.id] = JoinGrant(claims=claims, principal=principal, meeting=access,
                                              meeting_title=meeting.title, office_code=person.office.code,
                                              office_name_en=person.office.name_en,
                                              office_name_km=person.office.name_km)
        missing = wanted - set(grants)
        if missing:
            self._refuse_pipe(node, address, f"people {sorted(missing)[:5]} in meeting {meeting.id}")
            raise NotFound(f"no such people: {sorted(missing)[:5]}")
        return grants

    async def record_link(self, node_id: int, action: str, *, address: str = "", details: dict[str, Any]) -> None:
        """Write a node's link event in the audit trail: ``node.link_lost`` (a cut, with the meetings and
        people it carried), ``node.link_restored`` (with the outage's length). A full disk is logged, not
        fatal: the link goes on."""
        if action not in ("node.link_lost", "node.link_restored"):
            raise ValueError(f"unknown node link event {action!r}")
        try:
            async with self.db.write() as uow:
                node = await uow.session.get(ProvincialNode, node_id)
                uow.audit(action, actor_id=None, actor_office_id=node.office_id if node else None, address=address,
                          target_type=TARGET, target_id=node_id, details=details)
        except StorageError:
            log.warning("could not record a node's link event", extra={"event": "node.link_record_failed",
                                                                      "node_id": node_id, "action": action})

    def _refuse_pipe(self, node: ProvincialNode, address: str, what: str, purpose: str = "pipe") -> None:
        log.warning("node asked for what is not its office's", extra={
            "event": f"node.{purpose}_refused", "node_id": node.id, "office_id": node.office_id, "what": what})
        if self.refusals is not None:
            self.refusals.note(Caller(None, address), "forbidden", target_type=TARGET, target_id=node.id,
                               route=f"node {purpose} ({what})"[:120], actor_office_id=node.office_id)

    # -- helpers -------------------------------------------------------------------------------------------
    def _refuse(self, address: str, reason: str, node: ProvincialNode | None) -> None:
        log.info("node credential refused", extra={
            "event": "node.refused", "reason": reason, "node_id": node.id if node else None,
            "credential_prefix": node.credential_prefix if node else None, "address": address})
        if self.refusals is not None:
            self.refusals.note(Caller(None, address), "node_credential", target_type=TARGET,
                               target_id=node.id if node else "", route=f"node authenticate ({reason})",
                               actor_office_id=node.office_id if node else None)

    @staticmethod
    async def _unused_credential(uow: UnitOfWork) -> str:
        """A fresh credential whose public prefix no node has (a clash of 48 random bits: never, in practice)."""
        for _ in range(5):
            credential = new_credential()
            if not await uow.session.scalar(select(ProvincialNode.id).where(
                    ProvincialNode.credential_prefix == display_prefix(credential))):
                return credential
        raise RuntimeError("no unused node credential prefix in 5 tries: the random source is broken")

    async def _load(self, node_id: int) -> ProvincialNode:
        async with self.db.read() as session:
            node = await session.get(ProvincialNode, node_id)
        if node is None:
            raise NotFound("no such node")
        return node


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _office(office: Office) -> dict[str, Any]:
    return {"id": office.id, "code": office.code, "kind": office.kind.value, "name_en": office.name_en,
            "name_km": office.name_km, "active": office.active}


def _meeting(meeting: Meeting, office_id: int, person_ids: set[int]) -> dict[str, Any]:
    """A meeting as a node of ``office_id`` sees it: the invitations of that office and its people only."""
    return {
        "id": meeting.id, "title": meeting.title, "kind": meeting.kind.value, "state": meeting.state.value,
        "host_office_id": meeting.host_office_id, "created_by_id": meeting.created_by_id,
        "starts_at": _time(meeting.starts_at), "ends_at": _time(meeting.ends_at),
        "opened_at": _time(meeting.opened_at), "closed_at": _time(meeting.closed_at),
        "description": meeting.description, "locked": meeting.locked, "lobby_enabled": meeting.lobby_enabled,
        "record_sessions": meeting.record_sessions, "quorum_percent": meeting.quorum_percent,
        "grace_seconds": meeting.grace_seconds, "sequence": meeting.sequence,
        "agenda": [{"id": item.id, "position": item.position, "title": item.title,
                    "presenter_office_id": item.presenter_office_id, "planned_minutes": item.planned_minutes}
                   for item in meeting.agenda],
        "invitations": [{"id": i.id, "office_id": i.office_id, "person_id": i.person_id}
                        for i in meeting.invitations if i.office_id == office_id or i.person_id in person_ids],
    }
