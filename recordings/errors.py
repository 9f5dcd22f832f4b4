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


class UploadError(RecordingError):
    """A node's upload into the archive's staging area is refused (recordings/incoming.py); nothing changed."""


class UploadInvalid(UploadError):
    """The request itself is malformed: a bad key, file name, offset or manifest."""


class UploadConflict(UploadError):
    """The upload's state does not allow the request (an offset that is not the stored size, a file that is
    incomplete, missing or differs from the manifest, an upload already sealed). ``offset``: the bytes
    stored of the file concerned, when the node should resume from there."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset
