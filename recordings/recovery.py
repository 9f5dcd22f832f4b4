"""Finalising what a crashed server left: at start-up, before any session records again.

A recording folder without ``manifest.json`` was not closed cleanly (``kill -9``, power cut, a
failed disk). Every media file is repaired (:func:`recordings.webm_repair.repair`: cut at the
last complete cluster, cues and duration added), and the manifest is written from the journal
with the gap the crash left (``recovered: true``). Idempotent: a folder that has a manifest is
left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RecordingError
from .journal import JOURNAL_NAME
from .manifest import MANIFEST_NAME, assemble, load_manifest, write_manifest
from .webm_repair import repair

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovered:
    key: str
    manifest_sha256: str
    manifest: dict[str, Any]
    truncated_bytes: int


def unfinished(root: Path) -> list[Path]:
    """Recording folders under ``root`` that have a journal but no manifest."""
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir()
                  if d.is_dir() and (d / JOURNAL_NAME).exists() and not (d / MANIFEST_NAME).exists())


def recover(directory: Path, record_of: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Recovered:
    """Repair and seal one folder. ``record_of(start_event)`` gives the session's record for the
    manifest (chapters, speakers...), from the journal's start event (which names the meeting)."""
    truncated = 0
    for path in sorted(directory.glob("*.webm")):
        try:
            truncated += repair(path).truncated_bytes
        except RecordingError as exc:
            # A head never written (crash in the first instant): nothing in it to keep.
            logger.warning("recording %s: %s cannot be repaired (%s); set aside", directory.name, path.name, exc)
            path.rename(path.with_suffix(".unreadable"))
    manifest = assemble(directory)
    if record_of is not None:
        manifest["record"] = record_of(manifest["recording"])
    sha = write_manifest(directory, manifest)
    return Recovered(directory.name, sha, load_manifest(directory), truncated)
