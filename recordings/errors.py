"""Errors of the recordings package.

Everything the package raises on purpose derives from :class:`RecordingError`, so a caller (the
session recorder) can keep a live session running whatever a recording does: a failed disk
fails the recording, never the meeting.
"""

from __future__ import annotations


class RecordingError(Exception):
    """Base of the errors of the recordings package."""


class RecordingWriteError(RecordingError):
    """Writing a recording file failed (disk full, I/O error, short write).

    The :class:`OSError` is the ``__cause__``; its errno is copied to :attr:`errno` (None when
    the failure was not an OSError with an errno).
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class RecordingFormatError(RecordingError, ValueError):
    """A file is not a WebM file this package can read or repair (bad or truncated head)."""
