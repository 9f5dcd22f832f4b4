"""Configuration section ``[recordings]``: where the archive lives, and what a node may upload into it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordingsConfig:
    #: Folder of the recording archive. Empty: ``recordings`` in the data directory.
    directory: str = ""
    #: Record sessions at all (a meeting can also opt out: Meeting.record_sessions).
    enabled: bool = True
    #: The centre: the largest file of a recording a provincial node may upload, in MiB
    #: (web/views/node_uploads.py). A three-hour proceedings file at 1.5 Mbit/s is about 2 GiB.
    node_upload_max_mb: int = 8192

    def validate(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if not 1 <= self.node_upload_max_mb <= 1_048_576:
            problems.append(("node_upload_max_mb", "must be between 1 and 1048576 (1 TiB)"))
        return problems
