"""Errors of the domain layer. Every error has a stable ``code`` the web and signaling layers expose."""

from __future__ import annotations


class MeetingsError(Exception):
    """Base class of every error raised by meetings/."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(MeetingsError):
    code = "not_found"


class PermissionDenied(MeetingsError):
    code = "forbidden"


class NotAuthenticated(MeetingsError):
    code = "unauthenticated"


class ValidationFailed(MeetingsError):
    code = "invalid"


class Conflict(MeetingsError):
    code = "conflict"


class LoginFailed(MeetingsError):
    code = "login_failed"


class LoginThrottled(MeetingsError):
    code = "throttled"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class TokenInvalid(MeetingsError):
    code = "token_invalid"


class StorageError(MeetingsError):
    """The database could not take a write for a reason of the machine, not of the request; nothing of
    the request was written, and trying again later can succeed."""

    code = "storage"


class DatabaseBusy(StorageError):
    code = "busy"


class DiskFull(StorageError):
    code = "disk_full"


class DatabaseReadOnly(StorageError):
    code = "read_only"
