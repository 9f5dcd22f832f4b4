"""The node's disk quota for its recordings (``[provincial_nodes] recordings_quota_mb``).

When the node's archive uses more than the quota, the oldest recordings that the centre has already sealed
(the uploader's ledger says so, for the very manifest the node holds) are evicted first
(:meth:`provincial_nodes.local_recordings.NodeArchive.evict`: media removed, the row a tombstone, audited).
A recording not yet at the centre is never evicted: the node keeps it, over quota, and says so in a warning
(once for each set of such recordings, not at every check).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from meetings.errors import MeetingsError
from recordings.errors import RecordingError

from .local_recordings import LocalRecording, NodeArchive, media_bytes

log = logging.getLogger("provincial_nodes.quota")

REASON = "the node's recordings quota: the centre holds this recording (sealed there)"


@dataclass(frozen=True)
class QuotaPlan:
    """What to do about the quota: the recordings to evict (oldest first), and those that would have had
    to go but are not at the centre yet."""

    used: int
    quota: int
    evict: list[LocalRecording] = field(default_factory=list)
    kept: list[LocalRecording] = field(default_factory=list)
    #: Bytes still over the quota once ``evict`` is done (0: within it).
    over_after: int = 0


def plan(recordings: Sequence[LocalRecording], sizes: Mapping[str, int], used: int, quota: int,
         at_centre: set[str]) -> QuotaPlan:
    """Oldest first, evict what the centre holds until the archive is within ``quota`` bytes (0: none)."""
    if quota <= 0 or used <= quota:
        return QuotaPlan(used, quota)
    excess = used - quota
    evict: list[LocalRecording] = []
    kept: list[LocalRecording] = []
    for recording in recordings:
        if excess <= 0:
            break
        if recording.key in at_centre:
            evict.append(recording)
            excess -= sizes.get(recording.key, 0)
        else:
            kept.append(recording)
    return QuotaPlan(used, quota, evict, kept if excess > 0 else [], max(0, excess))


class RecordingsQuota:
    def __init__(self, archive: NodeArchive, quota_bytes: int) -> None:
        self.archive = archive
        self.quota_bytes = quota_bytes
        self.evicted = 0
        self._warned: frozenset[str] = frozenset()

    async def enforce(self, sealed_at_centre: Mapping[str, str]) -> QuotaPlan:
        """Evict as :func:`plan` says. ``sealed_at_centre``: key -> the manifest SHA-256 the centre sealed."""
        if self.quota_bytes <= 0:
            return QuotaPlan(0, 0)
        used = await self.archive.used_bytes()
        if used <= self.quota_bytes:
            self._warned = frozenset()
            return QuotaPlan(used, self.quota_bytes)
        recordings = await self.archive.sealed()
        at_centre = {r.key for r in recordings if sealed_at_centre.get(r.key) == r.manifest_sha256}
        sizes = {r.key: media_bytes(r.directory) for r in recordings}
        decided = plan(recordings, sizes, used, self.quota_bytes, at_centre)
        for recording in decided.evict:
            try:
                freed = await self.archive.evict(recording, REASON)
            except (MeetingsError, RecordingError, OSError) as exc:  # a legal hold, a disk error: kept
                log.warning("recording %s kept over the quota: %s", recording.key, exc,
                            extra={"event": "node.recording_kept", "recording_id": recording.recording_id})
                continue
            self.evicted += 1
            log.info("recording evicted from the node (the centre holds it)", extra={
                "event": "node.recording_evicted", "recording_id": recording.recording_id, "key": recording.key,
                "meeting_id": recording.meeting_id, "bytes": freed})
        kept = frozenset(r.key for r in decided.kept)
        if decided.over_after > 0 and kept != self._warned:
            log.warning("the node's recordings use %d MiB of a %d MiB quota; %d recordings not yet at the centre "
                        "are kept until they are uploaded", used // 2**20, self.quota_bytes // 2**20, len(kept),
                        extra={"event": "node.recordings_over_quota", "used_bytes": used,
                               "quota_bytes": self.quota_bytes, "not_uploaded": sorted(kept)[:20]})
        self._warned = kept
        return decided
