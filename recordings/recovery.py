"""Finalising what a crashed server left: at start-up, before any session records again.

A recording folder without ``manifest.json`` was not closed cleanly (``kill -9``, power cut, a
failed disk). Every media file is repaired (:func:`repair_files`, through
:func:`recordings.webm_repair.repair`: cut at the last complete cluster, cues and duration added);
the caller then writes the manifest from the journal (:func:`recordings.manifest.assemble`), which
marks the gap the crash left (``recovered: true``). Idempotent: a folder that has a manifest is
left alone (:func:`unfinished` does not list it).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .errors import RecordingError
from .journal import JOURNAL_NAME
from .manifest import MANIFEST_NAME
from .webm_repair import repair

logger = logging.getLogger(__name__)


def unfinished(root: Path) -> list[Path]:
    """Recording folders under ``root`` that have a journal but no manifest."""
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir()
                  if d.is_dir() and (d / JOURNAL_NAME).exists() and not (d / MANIFEST_NAME).exists())


def repair_files(directory: Path) -> int:
    """Repair every media file of a folder a crash left (the manifest is then written from the
    journal by :func:`recordings.manifest.assemble`). Returns the bytes of partial clusters cut."""
    truncated = 0
    for path in sorted(directory.glob("*.webm")):
        try:
            truncated += repair(path).truncated_bytes
        except RecordingError as exc:
            # A head never written (crash in the first instant): nothing in it to keep.
            logger.warning("recording %s: %s cannot be repaired (%s); set aside", directory.name, path.name, exc)
            path.rename(path.with_suffix(".unreadable"))
    return truncated
