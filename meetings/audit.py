"""The audit chain: keyed row hashing, appending under a lock, and verification.

Every row's ``hash`` is HMAC-SHA256 over its canonical JSON (sequence number, time, actor, office,
address, action, target, details) and the previous row's hash, keyed with a key derived from the
server's secret key, which lives in the data directory's key file or the configuration and never in
the database. Someone who can write the database but does not hold the key cannot make a row that
verifies: editing, deleting, reordering or re-chaining rows breaks the chain at the first row touched.
Dropping rows from the end (and moving the head back) leaves a valid shorter chain; that is caught by
the signed checkpoints of the head kept outside the database (meetings/audit_checkpoints.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.audit_checkpoints import Checkpoint
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


@dataclass(frozen=True)
class Head:
    """The last row of the chain: its sequence number and hash (GENESIS_HASH for an empty chain)."""

    seq: int
    hash: str


def canonical_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_row(event: AuditEvent) -> bytes:
    """The bytes a row's hash covers: every field and the hash of the row before."""
    return json.dumps(
        [event.seq, canonical_time(event.created_at), event.actor_id, event.actor_office_id, event.address,
         event.action, event.target_type, event.target_id, event.details, event.prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def event_hash(key: bytes, event: AuditEvent) -> str:
    return hmac.new(key, canonical_row(event), hashlib.sha256).hexdigest()


async def head(session: AsyncSession) -> Head:
    row = (await session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID))).one_or_none()
    if row is None:
        raise RuntimeError("audit_head row is missing: the database was not migrated")
    return Head(row[0], row[1])


async def append(session: AsyncSession, key: bytes, events: Sequence[PendingEvent]) -> Head | None:
    """Append events to the chain inside the caller's transaction; return the new head.

    The head row is updated before it is read, which takes the write lock on SQLite and the row
    lock on PostgreSQL, so concurrent writers (other processes included) queue here.
    """
    if not events:
        return None
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
        event.hash = event_hash(key, event)
        prev = event.hash
        session.add(event)
    await session.flush()
    await session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=seq, hash=prev))
    return Head(seq, prev)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str = ""
    #: Signed checkpoints (from outside the database) the chain was held against, and the highest row named.
    checkpoints: int = 0
    checkpoint_seq: int = 0


class _Checkpoints:
    """The highest checkpoint and, per sequence number, the hash the checkpoints name."""

    def __init__(self, checkpoints: Sequence[Checkpoint]) -> None:
        self.by_seq: dict[int, Checkpoint] = {}
        self.conflict: tuple[Checkpoint, Checkpoint] | None = None
        for checkpoint in checkpoints:
            seen = self.by_seq.setdefault(checkpoint.seq, checkpoint)
            if seen.hash != checkpoint.hash and self.conflict is None:
                self.conflict = (seen, checkpoint)
        self.highest = max(self.by_seq.values(), key=lambda c: c.seq, default=None)


async def verify(session: AsyncSession, key: bytes, checkpoints: Sequence[Checkpoint] = (),
                 batch: int = 1000) -> VerifyResult:
    """Walk the chain from the first row; report the first broken link.

    ``checkpoints`` are signed checkpoints already checked for their signature: each must name a row
    that exists with that very hash, and the chain must reach the highest of them.
    """
    marks = _Checkpoints(checkpoints)
    if marks.conflict is not None:
        first, second = marks.conflict
        return VerifyResult(False, 0, 0, GENESIS_HASH, first.seq,
                            f"two signed checkpoints name different hashes for row {first.seq} "
                            f"({first.source} and {second.source})")
    stored_head = (await session.execute(select(AuditHead).where(AuditHead.id == HEAD_ID))).scalar_one_or_none()
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
            if not hmac.compare_digest(event_hash(key, event), event.hash):
                return VerifyResult(False, checked, last_seq, expected_prev, event.seq,
                                    "row content does not match its keyed hash (edited, or written without the key)")
            mark = marks.by_seq.get(event.seq)
            if mark is not None and mark.hash != event.hash:
                return VerifyResult(False, checked, last_seq, expected_prev, event.seq,
                                    f"row differs from the signed checkpoint of {mark.at_text} ({mark.source})")
            expected_prev = event.hash
            expected_seq += 1
            last_seq = event.seq
            checked += 1
        session.expunge_all()
    if stored_head is None:
        return VerifyResult(False, checked, last_seq, expected_prev, None, "audit head row is missing")
    if marks.highest is not None and marks.highest.seq > last_seq:
        return VerifyResult(False, checked, last_seq, expected_prev, last_seq + 1,
                            f"the chain ends at row {last_seq} but the signed checkpoint of "
                            f"{marks.highest.at_text} ({marks.highest.source}) names row {marks.highest.seq} "
                            "(rows removed from the end)")
    if stored_head.seq != last_seq or stored_head.hash != expected_prev:
        return VerifyResult(False, checked, last_seq, expected_prev, last_seq + 1,
                            f"head names row {stored_head.seq} but the chain ends at row {last_seq} (rows removed)")
    return VerifyResult(True, checked, last_seq, expected_prev, checkpoints=len(marks.by_seq),
                        checkpoint_seq=marks.highest.seq if marks.highest else 0)
