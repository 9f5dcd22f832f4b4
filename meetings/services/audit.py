"""Reading and verifying the audit trail (writing happens in every service's unit of work)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from meetings import audit
from meetings.db import Database
from meetings.models import AuditEvent
from meetings.policy import Action, Caller, require


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def recent(self, caller: Caller, *, limit: int = 100, before_seq: int | None = None,
                     action_prefix: str = "") -> Sequence[AuditEvent]:
        require(caller, Action.VIEW_AUDIT)
        limit = max(1, min(int(limit), 500))
        async with self.db.read() as session:
            query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
            if before_seq is not None:
                query = query.where(AuditEvent.seq < before_seq)
            if action_prefix:
                query = query.where(AuditEvent.action.startswith(action_prefix, autoescape=True))
            return (await session.execute(query)).scalars().all()

    async def verify(self, caller: Caller) -> audit.VerifyResult:
        require(caller, Action.VIEW_AUDIT)
        async with self.db.read() as session:
            return await audit.verify(session)
