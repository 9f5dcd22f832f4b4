"""Where a site's tracks are missing from a recording, and what fills them (issue 14).

A provincial node's people reach the centre's recording through the node's link. When that link is cut,
their tracks stop at the centre while the session (and its recording) goes on: the centre writes a
:class:`~meetings.models.recordings.RecordingGap` for each recording being made of a meeting the node
carried, at once (a crash of the centre during the cut does not lose it), and ends it when the link comes
back or the recording ends, whichever is first.

The node records its own tracks throughout (its hall went on). When its recording of the meeting reaches
the archive (``RecordingService.add_from_node``), every gap of that node in the meeting's recordings that
the copy's tracks of the node's office cover, from the gap's start to its end (within
:data:`COVER_SLACK`), is filled: ``filled_by_id`` names the copy, audited ``recording.gap_filled``. The
archive then shows, for that site, the centre's tracks with the node's copy for each cut: no gap.

:class:`RecordingGapBook` is a part of :class:`meetings.services.recordings.RecordingService`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.db import Database, UnitOfWork
from meetings.errors import PermissionDenied
from meetings.models import Office, ProvincialNode
from meetings.models.base import utcnow
from meetings.models.recordings import ACTIVE_STATES, FileKind, Recording, RecordingFile, RecordingGap
from meetings.policy import Caller
from meetings.services.common import record

#: A node's track starts with its first frame and ends with its last: a copy that begins or ends this
#: close to a gap's edges still covers it (a keyframe's wait, a last packet in flight when the link went).
COVER_SLACK = dt.timedelta(seconds=3)


def covers(files: Iterable[RecordingFile], started: dt.datetime, ended: dt.datetime) -> bool:
    """Whether the union of ``files``' intervals covers [started, ended] (each edge within the slack)."""
    spans = sorted((f.started_at, f.ended_at) for f in files if f.started_at is not None and f.ended_at is not None)
    reach = started  # covered up to here
    for first, last in spans:
        if first > reach + COVER_SLACK:
            return False  # a hole before this file
        reach = max(reach, last)
        if reach + COVER_SLACK >= ended:
            return True
    return False


class RecordingGapBook:
    """Opening, ending and filling gaps (see the module docstring)."""

    db: Database

    async def open_gaps(self, caller: Caller, node_id: int, meeting_ids: Iterable[int], at: dt.datetime) -> list[int]:
        """The node's link was cut at ``at``: a gap in every recording being made of ``meeting_ids``. The
        server only; idempotent (a gap of the node already open in a recording stays the one). Returns the
        gaps' ids. A database that cannot be written is logged by the caller, not fatal: the link goes on."""
        if not caller.system:
            raise PermissionDenied("only the server records a node's gaps")
        meetings = sorted(set(meeting_ids))
        if not meetings:
            return []
        opened: list[int] = []
        async with self.db.write() as uow:
            s = uow.session
            node = await s.get(ProvincialNode, node_id)
            if node is None:
                return []
            recordings = (await s.scalars(select(Recording).where(
                Recording.meeting_id.in_(meetings), Recording.state.in_(ACTIVE_STATES)))).all()
            for recording in recordings:
                already = await s.scalar(select(RecordingGap.id).where(
                    RecordingGap.recording_id == recording.id, RecordingGap.node_id == node_id,
                    RecordingGap.ended_at.is_(None)))
                if already is not None:
                    opened.append(already)
                    continue
                gap = RecordingGap(recording_id=recording.id, office_id=node.office_id, node_id=node_id,
                                   started_at=max(at, recording.started_at))
                s.add(gap)
                await s.flush()
                opened.append(gap.id)
                record(uow, caller, "recording.gap", target_type="recording", target_id=recording.id,
                       details={"meeting_id": recording.meeting_id, "gap_id": gap.id, "node_id": node_id,
                                "office_id": node.office_id, "from": gap.started_at.isoformat()})
        return opened

    async def end_gaps(self, caller: Caller, node_id: int, at: dt.datetime | None = None) -> int:
        """The node's link is back: its open gaps end at ``at`` (now). The server only; how many ended."""
        if not caller.system:
            raise PermissionDenied("only the server records a node's gaps")
        async with self.db.write() as uow:
            done = await uow.session.execute(update(RecordingGap).where(
                RecordingGap.node_id == node_id, RecordingGap.ended_at.is_(None)).values(ended_at=at or utcnow()))
        return int(done.rowcount or 0)  # type: ignore[attr-defined]

    async def gap_offices(self, recording: Recording) -> dict[int, dict[str, str]]:
        """The names (``en``, ``km``) of the offices whose gaps ``recording`` has (a recording the caller
        may see: the archive asked the service for it)."""
        ids = {gap.office_id for gap in recording.gaps}
        if not ids:
            return {}
        async with self.db.read() as session:
            rows = (await session.execute(select(Office.id, Office.name_en, Office.name_km)
                                          .where(Office.id.in_(ids)))).all()
        return {office_id: {"en": en, "km": km or en} for office_id, en, km in rows}

    async def _fill_gaps(self, uow: UnitOfWork, caller: Caller, node: ProvincialNode, copy: Recording,
                         entries: list[RecordingFile]) -> list[int]:
        """The node's ``copy`` of its meeting was filed: the node's ended gaps in the meeting's recordings
        that its office's tracks cover are filled by it. Returns the gaps filled."""
        s = uow.session
        tracks = [f for f in entries if f.kind == FileKind.TRACK.value and f.office_id == node.office_id]
        if not tracks:
            return []
        gaps = (await s.scalars(select(RecordingGap).join(Recording, Recording.id == RecordingGap.recording_id).where(
            Recording.meeting_id == copy.meeting_id, RecordingGap.node_id == node.id,
            RecordingGap.filled_by_id.is_(None), RecordingGap.ended_at.is_not(None)))).all()
        filled: list[int] = []
        for gap in gaps:
            assert gap.ended_at is not None
            if covers(tracks, gap.started_at, gap.ended_at):
                gap.filled_by_id = copy.id
                filled.append(gap.id)
                record(uow, caller, "recording.gap_filled", target_type="recording", target_id=gap.recording_id,
                       details={"gap_id": gap.id, "filled_by": copy.id, "node_id": node.id,
                                "office_id": node.office_id, "seconds": round(
                                    (gap.ended_at - gap.started_at).total_seconds(), 1)})
        return filled


async def end_open_gaps(session: AsyncSession, recording_id: int, now: dt.datetime) -> None:
    """The recording ended: a gap still open ends with it."""
    await session.execute(update(RecordingGap).where(RecordingGap.recording_id == recording_id,
                                                     RecordingGap.ended_at.is_(None)).values(ended_at=now))


__all__ = ("COVER_SLACK", "RecordingGapBook", "covers", "end_open_gaps")
