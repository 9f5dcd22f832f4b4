"""The bots package's single error hierarchy: every error raised on purpose is a BotError."""

from __future__ import annotations


class BotError(Exception):
    """Base class of every error raised by the ``bots`` package.

    ``fatal``: retrying (reconnecting) cannot help, e.g. the bot was removed from the meeting or its
    login was refused; a reconnecting bot stops at such an error.
    """

    fatal: bool = False


class MediaFileError(BotError):
    """Pre-encoded media could not be generated, read or used."""


class SignalingError(BotError):
    """The signaling server refused a connection or a request (``code`` is the server's code)."""

    def __init__(self, code: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fatal = fatal


class LoginError(BotError):
    """Logging in or obtaining a join token over HTTP failed (``fatal``: refused, not unreachable)."""

    def __init__(self, message: str, *, fatal: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.status = status


class ReconnectImpossible(BotError):
    """The bot has no way to get another join token (it was given a single-use ``--token``)."""

    fatal = True


class NegotiationError(BotError):
    """An SDP offer/answer could not be produced or applied by a bot."""
