"""Recording a room's connections as attendance intervals, without ever losing one.

Each join and departure is written at once (in the background); a heartbeat refreshes the open
intervals' ``last_seen_at`` in one batched UPDATE per meeting. A failed write is logged and kept:
the next flush (at the latest the next heartbeat) writes it again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from meetings.models.base import utcnow
from meetings.services.attendance import AttendanceService, ConnectionRecord
from signaling.liveness import seen_at
from signaling.participant import Participant

log = logging.getLogger("signaling.attendance")

#: How a room removal ends an attendance interval.
END_REASON = {"left": "left", "dropped": "dropped", "replaced": "dropped", "removed": "removed",
              "restart": "restart"}


class AttendanceRecorder:
    def __init__(self, meeting_id: int, service: AttendanceService) -> None:
        self.meeting_id = meeting_id
        self.service = service
        self.records: list[ConnectionRecord] = []
        self.by_participant: dict[str, ConnectionRecord] = {}
        #: The participants of the open records, whose evidence of life the heartbeat writes.
        self.participants: dict[str, Participant] = {}
        #: The session closed: the service ended every interval; nothing new is opened.
        self.closed = False
        self.failures = 0
        self._lock = asyncio.Lock()

    def opened(self, participant: Participant) -> None:
        if self.closed or participant.id in self.by_participant:
            return
        principal = participant.grant.principal
        record = ConnectionRecord(self.meeting_id, principal.person_id, principal.office_id, participant.client,
                                  participant.joined_at or utcnow())
        self.records.append(record)
        self.by_participant[participant.id] = record
        self.participants[participant.id] = participant

    def ended(self, participant: Participant, status: str) -> None:
        record = self.by_participant.pop(participant.id, None)
        self.participants.pop(participant.id, None)
        if record is not None and record.left_at is None:
            # a dead link ends at its last evidence of life (signaling/liveness.py); one who left behind a
            # provincial node during a WAN cut, when the node saw them go; anything else now
            gone = participant.gone_at if status in ("dropped", "replaced") or participant.via is not None else None
            record.left_at = max(gone, record.joined_at) if gone is not None else utcnow()
            record.end_reason = END_REASON.get(status, "dropped")

    def session_closed(self, at: dt.datetime) -> None:
        """The service closed every open interval at ``at``; those not yet written are written closed."""
        self.closed = True
        for record in self.records:
            if record.left_at is None:
                record.left_at, record.end_reason = at, "closed"
                record.closed_written = record.interval_id is not None
        self.by_participant.clear()
        self.participants.clear()

    async def flush(self, *, heartbeat: bool = False) -> bool:
        """Write what is pending (and on ``heartbeat`` refresh the open intervals). False on failure."""
        async with self._lock:
            batch = [r for r in self.records if r.pending or (heartbeat and r.left_at is None)]
            if not batch:
                return True
            if heartbeat:
                self._note_evidence()
            try:
                await self.service.sync(batch, heartbeat=heartbeat)
            except Exception:  # noqa: BLE001 - keep the batch; the next flush retries it
                self.failures += 1
                log.exception("attendance write failed; will retry", extra={
                    "event": "attendance.write_failed", "meeting_id": self.meeting_id, "pending": len(batch)})
                if (journal := getattr(self.service, "journal", None)) is not None:
                    journal.failed(self.meeting_id, batch)  # on disk, so a crash loses none of it
                return False
            if (journal := getattr(self.service, "journal", None)) is not None:
                journal.written(batch)
            self.records = [r for r in self.records if r.left_at is None or r.pending]
            return True

    def _note_evidence(self) -> None:
        """Each open record's ``last_seen_at``: its connection's last evidence of life (now while fresh)."""
        now = utcnow()
        for participant_id, record in self.by_participant.items():
            participant = self.participants.get(participant_id)
            if participant is not None and record.left_at is None:
                record.last_seen_at = max(seen_at(participant, now), record.joined_at)
