"""Deleting a recording's media: the files go, a tombstone stays.

Deletion (the secretariat with a reason, or the end of a retention period) removes the media files
and any copies derived from them (the MP4 export, the BagIt package) and writes ``tombstone.json``
beside the sealed manifest and journal: when, by whom, why, and which files (the manifest still
holds their SHA-256, so the record says exactly what was destroyed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TOMBSTONE_NAME = "tombstone.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def bury(directory: Path, names: Iterable[str], *, derived: Iterable[Path] = (), **facts: Any) -> list[str]:
    """Remove the named media files of ``directory`` (names only: never a path) and ``derived`` copies,
    then write the tombstone with ``facts`` (deleted_at, by, reason...). Returns the names removed."""
    removed = []
    for name in names:
        if not _NAME.match(name) or name in (TOMBSTONE_NAME, "manifest.json", "journal.jsonl"):
            continue
        path = directory / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    for path in derived:
        path.unlink(missing_ok=True)
    if directory.is_dir():
        stone = {**facts, "files": removed}
        (directory / TOMBSTONE_NAME).write_text(json.dumps(stone, ensure_ascii=False, indent=1, default=str) + "\n")
    return removed
