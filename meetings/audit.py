"""The audit chain: canonical row hashing, appending under a lock, and verification.

Every row's ``hash`` is SHA-256 over its canonical JSON (sequence number, time, actor, office,
address, action, target, details) and the previous row's hash. Editing, deleting or reordering a row
breaks the chain at that row; dropping rows from the end is caught by the head pointer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.models.audit import GENESIS_HASH, AuditEvent, AuditHead
from meetings.models.base import utcnow

HEAD_ID = 1


@dataclass(frozen=True)
class PendingEvent:
    action: str
    actor_id: int | None
    actor_office_id: int | None
    address: str
    target_type: str = ""
    target_id: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def _canonical_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(
    *,
    seq: int,
    created_at: dt.datetime,
    actor_id: int | None,
    actor_office_id: int | None,
    address: str,
    action: str,
    target_type: str,
    target_id: str,
    details: str,
    prev_hash: str,
) -> str:
    canonical = json.dumps(
        [seq, _canonical_time(created_at), actor_id, actor_office_id, address, action,
         target_type, target_id, details, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def event_hash(event: AuditEvent) -> str:
    return row_hash(
        seq=event.seq,
        created_at=event.created_at,
        actor_id=event.actor_id,
        actor_office_id=event.actor_office_id,
        address=event.address,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        details=event.details,
        prev_hash=event.prev_hash,
    )


async def append(session: AsyncSession, events: Sequence[PendingEvent]) -> None:
    """Append events to the chain inside the caller's transaction.

    The head row is updated before it is read, which takes the write lock on SQLite and the row
    lock on PostgreSQL, so concurrent writers (other processes included) queue here.
    """
    if not events:
        return
    result = await session.execute(
        update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=AuditHead.seq).returning(
            AuditHead.seq, AuditHead.hash
        )
    )
    row = result.one_or_none()
    if row is None:
        raise RuntimeError("audit_head row is missing: the database was not migrated")
    seq, prev = row
    now = utcnow()
    for pending in events:
        seq += 1
        details = json.dumps(pending.details, ensure_ascii=False, sort_keys=True, default=str)
        event = AuditEvent(
            seq=seq,
            created_at=now,
            actor_id=pending.actor_id,
            actor_office_id=pending.actor_office_id,
            address=pending.address[:64],
            action=pending.action,
            target_type=pending.target_type,
            target_id=pending.target_id,
            details=details,
            prev_hash=prev,
            hash="",
        )
        event.hash = event_hash(event)
        prev = event.hash
        session.add(event)
    await session.flush()
    await session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=seq, hash=prev))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str = ""


async def verify(session: AsyncSession, batch: int = 1000) -> VerifyResult:
    """Walk the chain from the first row; report the first broken link."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == HEAD_ID))).scalar_one_or_none()
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.seq >= expected_seq).order_by(AuditEvent.seq).limit(batch)
            )
        ).scalars().all()
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                return VerifyResult(False, checked, last_seq, expected_prev, expected_seq,
                                    f"row {expected_seq} is missing (next row is {event.seq})")
            if event.prev_hash != expected_prev:
                return VerifyResult(False, checked, last_seq, expected_prev, event.seq,
                                    "prev_hash does not match the hash of the row before")
            if event_hash(event) != event.hash:
                return VerifyResult(False, checked, last_seq, expected_prev, event.seq,
                                    "row content does not match its hash (edited)")
            expected_prev = event.hash
            expected_seq += 1
            last_seq = event.seq
            checked += 1
        session.expunge_all()
    if head is None:
        return VerifyResult(False, checked, last_seq, expected_prev, None, "audit head row is missing")
    if head.seq != last_seq or head.hash != expected_prev:
        return VerifyResult(False, checked, last_seq, expected_prev, last_seq + 1,
                            f"head names row {head.seq} but the chain ends at row {last_seq} (rows removed)")
    return VerifyResult(True, checked, last_seq, expected_prev)
