"""The archive at start-up and from the command line: finalise what a crash left, verify seals.

Joins recordings/ (files, manifests) and meetings/ (rows, audit); the only place that knows both
besides the live rooms (signaling/recording.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

from meetings.errors import MeetingsError
from meetings.models.recordings import Recording
from meetings.policy import Caller
from meetings.services import Services
from recordings.errors import RecordingError
from recordings.manifest import assemble, verify, write_manifest
from recordings.journal import journal_start
from recordings.recovery import repair_files, unfinished
from recordings.tombstone import bury

log = logging.getLogger("cabinet.recordings")
SERVER = Caller(principal=None, address="server", system=True)


async def recover_recordings(services: Services, root: Path) -> int:
    """Finalise every folder a crash left unsealed, and close its row (before any session
    records again). Returns how many were recovered."""
    count = 0
    for directory in await asyncio.to_thread(unfinished, root):
        try:
            truncated = await asyncio.to_thread(repair_files, directory)
            start = await asyncio.to_thread(journal_start, directory)
        except (OSError, RecordingError) as exc:
            log.error("recording %s could not be finalised: %s", directory.name, exc,
                      extra={"event": "recording.recovery_failed"})
            continue
        recording_id = start.get("recording_id")
        if not isinstance(recording_id, int):
            log.error("recording %s: the journal names no recording", directory.name)
            continue
        try:
            origin = dt.datetime.fromisoformat(str(start.get("utc")).replace("Z", "+00:00"))
            record = await services.recordings.session_record(SERVER, recording_id, origin)
            manifest = await asyncio.to_thread(assemble, directory, record)
            sha = await asyncio.to_thread(write_manifest, directory, manifest)
            size = sum(p.stat().st_size for p in directory.glob("*.webm"))
            await services.recordings.register_files(SERVER, recording_id, manifest)
            await services.recordings.close(SERVER, recording_id, manifest_sha256=sha, size_bytes=size,
                                            duration_ms=int(manifest["duration_ms"]))
        except (OSError, ValueError, RecordingError, MeetingsError) as exc:
            log.error("recording %s could not be sealed: %s", directory.name, exc)
            continue
        count += 1
        log.warning("recording %s finalised after a crash (%d bytes of partial clusters cut)", directory.name,
                    truncated, extra={"event": "recording.recovered", "recording_id": recording_id})
    return count


async def verify_recordings(services: Services, root: Path, meeting_id: int | None) -> list[str]:
    """Every problem of the sealed recordings (of one meeting, or all): files that no longer match
    their manifest, manifests that no longer match their seal. Empty: all intact."""
    problems: list[str] = []
    for recording in await services.recordings.sealed(Caller.cli(), meeting_id):
        directory = root / recording.key
        for mismatch in await asyncio.to_thread(verify, directory, recording.manifest_sha256):
            problems.append(f"recording {recording.id} (meeting {recording.meeting_id}): {mismatch}")
    return problems


def bag_info(recording: Recording) -> list[tuple[str, str]]:
    """bag-info.txt fields of a recording's BagIt package."""
    return [
        ("Source-Organization", "Cabinet secretariat"),
        ("External-Identifier", f"cabinet-recording-{recording.id}"),
        ("External-Description", f"Recording {recording.id} of meeting {recording.meeting_id}"),
        ("Cabinet-Meeting-Id", str(recording.meeting_id)),
        ("Cabinet-Recording-Started", recording.started_at.isoformat()),
        ("Cabinet-Recording-Ended", recording.ended_at.isoformat() if recording.ended_at else ""),
        ("Cabinet-Manifest-SHA256", recording.manifest_sha256 or ""),
    ]


#: How often the server looks for recordings whose retention period has ended.
RETENTION_EVERY_S = 6 * 3600


async def apply_retention(services: Services, root: Path, now: dt.datetime | None = None) -> int:
    """Delete the media of recordings past their retention period (not on legal hold): a tombstone
    stays, the audit trail says why. Returns how many were deleted."""
    count = 0
    for recording in await services.recordings.retention_due(now or dt.datetime.now(dt.UTC)):
        reason = f"retention period '{recording.retention_class}' ended on {recording.keep_until:%Y-%m-%d}"
        try:
            names = await services.recordings.delete(SERVER, recording.id, reason)
        except MeetingsError as exc:  # put on hold meanwhile, or already deleted
            log.info("recording %s kept: %s", recording.id, exc)
            continue
        exports = root / ".exports"
        await asyncio.to_thread(bury, root / recording.key, names, derived=[exports / f"{recording.key}.mp4",
                                                                         exports / f"{recording.key}-bag.tar"],
                                deleted_at=dt.datetime.now(dt.UTC).isoformat(), by="retention", reason=reason)
        log.warning("recording %s deleted: %s", recording.id, reason,
                    extra={"event": "recording.retention", "recording_id": recording.id})
        count += 1
    return count


async def run_retention(services: Services, root: Path) -> None:
    """The server's retention task: at start-up, then every RETENTION_EVERY_S."""
    while True:
        try:
            await apply_retention(services, root)
        except MeetingsError as exc:
            log.error("retention could not run: %s", exc)
        await asyncio.sleep(RETENTION_EVERY_S)
