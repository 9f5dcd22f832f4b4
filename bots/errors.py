"""The bots package's single error hierarchy: every error raised on purpose is a BotError."""

from __future__ import annotations


class BotError(Exception):
    """Base class of every error raised by the ``bots`` package."""


class MediaFileError(BotError):
    """Pre-encoded media could not be generated, read or used."""


class SignalingError(BotError):
    """The signaling server refused a connection or a request (``code`` is the server's code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class LoginError(BotError):
    """Logging in or obtaining a join token over HTTP failed."""


class NegotiationError(BotError):
    """An SDP offer/answer could not be produced or applied by a bot."""
