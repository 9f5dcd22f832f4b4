"""Reading and verifying the audit trail (writing happens in every service's unit of work)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from meetings import audit
from meetings.audit_checkpoints import Checkpoint, scan
from meetings.audit_trail import AuditTrail
from meetings.db import Database
from meetings.models import AuditEvent, Minutes, MinutesState
from meetings.policy import Action, Caller, require


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def trail(self) -> AuditTrail:
        if self.db.audit_trail is None:
            raise RuntimeError("the database has no audit trail: build it through Services")
        return self.db.audit_trail

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

    async def verify(self, caller: Caller, extra: Sequence[Checkpoint] = ()) -> audit.VerifyResult:
        """Check the keyed chain against every signed checkpoint known: the checkpoint file, the approved
        minutes, and ``extra`` (read from logs or exported minutes by the caller).

        A checkpoint whose signature does not verify is itself evidence of tampering: it fails the check.
        """
        require(caller, Action.VIEW_AUDIT)
        known = [*self.trail.stored_checkpoints(), *extra]
        async with self.db.read() as session:
            approved = (await session.execute(select(Minutes.meeting_id, Minutes.audit_checkpoint).where(
                Minutes.state == MinutesState.APPROVED, Minutes.audit_checkpoint != ""))).all()
            for meeting_id, text in approved:
                known.extend(scan(text, f"approved minutes of meeting {meeting_id}"))
            valid, forged = self.trail.check(known)
            if forged:
                first = forged[0]
                return audit.VerifyResult(False, 0, 0, "", first.seq,
                                          f"the checkpoint at {first.source} is not signed with this server's "
                                          f"key ({len(forged)} such)")
            return await audit.verify(session, self.trail.chain_key, valid)

    async def checkpoint(self, caller: Caller) -> Checkpoint:
        """A signed checkpoint of the current head (to print, publish or keep elsewhere)."""
        require(caller, Action.VIEW_AUDIT)
        async with self.db.read() as session:
            head = await audit.head(session)
        return self.trail.signer.sign(head.seq, head.hash)
