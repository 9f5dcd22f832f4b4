"""Signed tokens: join tokens for signaling, opaque session tokens, and key derivation.

A join token is ``base64url(payload) "." base64url(HMAC-SHA256(key, payload))``. The payload names
the meeting, the person, their office and roles, an expiry and a unique id. Signaling trusts the
meeting and role in a verified token, never the ones a message claims.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from meetings.errors import TokenInvalid

MAX_TOKEN_LENGTH = 2048


def derive_key(secret: str, purpose: str) -> bytes:
    """A separate key per purpose, so a token of one kind never verifies as another."""
    return hmac.new(secret.encode("utf-8"), f"cabinet/{purpose}".encode(), hashlib.sha256).digest()


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class JoinClaims:
    meeting_id: int
    person_id: int
    office_id: int
    roles: tuple[str, ...]
    issued_at: int
    expires_at: int
    token_id: str


class JoinTokenSigner:
    def __init__(self, secret: str, lifetime_seconds: int) -> None:
        self._key = derive_key(secret, "join-token")
        self.lifetime_seconds = lifetime_seconds

    def mint(self, *, meeting_id: int, person_id: int, office_id: int, roles: tuple[str, ...],
             now: float | None = None) -> tuple[str, JoinClaims]:
        issued = int(time.time() if now is None else now)
        claims = JoinClaims(meeting_id, person_id, office_id, tuple(sorted(roles)), issued,
                            issued + self.lifetime_seconds, secrets.token_urlsafe(12))
        payload = json.dumps(
            {"v": 1, "mid": meeting_id, "pid": person_id, "oid": office_id, "roles": list(claims.roles),
             "iat": claims.issued_at, "exp": claims.expires_at, "jti": claims.token_id},
            separators=(",", ":"),
        ).encode()
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()
        return f"{_b64encode(payload)}.{_b64encode(signature)}", claims

    def verify(self, token: object, now: float | None = None) -> JoinClaims:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("malformed join token")
        parts = token.split(".")
        if len(parts) != 2:
            raise TokenInvalid("malformed join token")
        try:
            payload = _b64decode(parts[0])
            signature = _b64decode(parts[1])
        except (ValueError, TypeError):
            raise TokenInvalid("malformed join token") from None
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise TokenInvalid("join token signature is invalid")
        try:
            data = json.loads(payload)
            claims = JoinClaims(
                meeting_id=int(data["mid"]), person_id=int(data["pid"]), office_id=int(data["oid"]),
                roles=tuple(str(r) for r in data["roles"]), issued_at=int(data["iat"]),
                expires_at=int(data["exp"]), token_id=str(data["jti"]),
            )
        except (ValueError, KeyError, TypeError):
            raise TokenInvalid("malformed join token") from None
        if data.get("v") != 1:
            raise TokenInvalid("unsupported join token version")
        current = time.time() if now is None else now
        if current >= claims.expires_at:
            raise TokenInvalid("join token has expired")
        return claims

    def signed_claims(self, token: object) -> JoinClaims | None:
        """The claims of a token this server signed, expired or not (to audit a refused connection by
        whom it names); None for a token it did not sign."""
        try:
            return self.verify(token, now=float("-inf"))
        except TokenInvalid:
            return None
