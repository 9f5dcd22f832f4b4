"""The node's own recordings, as its uploader and its disk quota see them.

The node records its local sessions like the centre (signaling/recording.py): a folder
``<archive>/<key>/`` and a row in the node's database, closed with the manifest's SHA-256 once sealed.
:class:`NodeArchive` lists the sealed ones (a closed row whose folder holds its manifest), oldest first, and
evicts one: its media files go, the row becomes a tombstone through the recording service (audited as
``recording.delete`` with the reason), and ``tombstone.json`` stays beside the manifest and journal.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from meetings.policy import Caller
from meetings.services import Services
from recordings.incoming import KEY_RE
from recordings.manifest import MANIFEST_NAME
from recordings.tombstone import bury

#: The node itself, acting on its own archive (audited like the centre's recorder).
NODE = Caller(principal=None, address="node", system=True)
#: Copies derived from a recording (web/views/archive.py), removed with it.
EXPORTS_DIR = ".exports"


@dataclass(frozen=True)
class LocalRecording:
    """A sealed recording of the node: its row and its folder."""

    recording_id: int
    key: str
    meeting_id: int
    started_at: dt.datetime
    manifest_sha256: str
    directory: Path


def media_bytes(directory: Path) -> int:
    """What evicting the folder frees: its media files (the manifest and journal stay, as a record)."""
    try:
        return sum(p.stat().st_size for p in directory.iterdir() if p.suffix == ".webm" and p.is_file())
    except FileNotFoundError:
        return 0


def tree_bytes(root: Path) -> int:
    """Bytes of every file under ``root`` (the whole archive: recordings being written and exports too)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:  # removed meanwhile
                continue
    return total


class NodeArchive:
    def __init__(self, services: Services, root: Path) -> None:
        self.services = services
        self.root = root

    async def sealed(self) -> list[LocalRecording]:
        """The node's sealed recordings, oldest first."""
        rows = await self.services.recordings.sealed(NODE)
        found: list[LocalRecording] = []
        for row in sorted(rows, key=lambda r: (r.started_at, r.id)):
            directory = self.root / row.key
            if not KEY_RE.fullmatch(row.key) or not row.manifest_sha256:
                continue
            if await asyncio.to_thread((directory / MANIFEST_NAME).is_file):
                found.append(LocalRecording(row.id, row.key, row.meeting_id, row.started_at, row.manifest_sha256,
                                            directory))
        return found

    async def used_bytes(self) -> int:
        return await asyncio.to_thread(tree_bytes, self.root) if self.root.is_dir() else 0

    async def evict(self, recording: LocalRecording, reason: str) -> int:
        """Delete a recording's media on the node (a tombstone stays); the bytes freed. Raises MeetingsError
        when the service refuses (a legal hold, already deleted): nothing is removed then."""
        freed = await asyncio.to_thread(media_bytes, recording.directory)
        names = await self.services.recordings.delete(NODE, recording.recording_id, reason)
        exports = self.root / EXPORTS_DIR
        await asyncio.to_thread(bury, recording.directory, names,
                                derived=[exports / f"{recording.key}.mp4", exports / f"{recording.key}-bag.tar"],
                                deleted_at=dt.datetime.now(dt.UTC).isoformat(), by="node quota", reason=reason)
        return freed
