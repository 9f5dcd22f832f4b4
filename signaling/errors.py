"""Errors of the signaling layer, each with a stable code sent back to the client."""

from __future__ import annotations

from typing import Any


class SignalingError(Exception):
    """Base class: answered to the client as ``{"ok": false, "error": {"code", "message"}}``."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code

    def ack(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "message": self.message}}


class InvalidMessage(SignalingError):
    code = "invalid"


class RateLimited(SignalingError):
    code = "rate_limited"


class Forbidden(SignalingError):
    code = "forbidden"


class WrongState(SignalingError):
    code = "wrong_state"


class NegotiationFailed(SignalingError):
    code = "negotiation_failed"
