"""Configuration section ``[recordings]``: where the archive lives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordingsConfig:
    #: Folder of the recording archive. Empty: ``recordings`` in the data directory.
    directory: str = ""
    #: Record sessions at all (a meeting can also opt out: Meeting.record_sessions).
    enabled: bool = True

    def validate(self) -> list[tuple[str, str]]:
        return []
