"""Password hashing (argon2id) and password rules."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# RFC 9106 second recommended option (memory-constrained): t=3, m=64 MiB, p=4.
_hasher = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)
# Verified against when the username is unknown, so the response time does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("not a real password; equalises timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str, *, min_length: int, username: str = "") -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < min_length:
        return f"must be at least {min_length} characters"
    if len(password) > 1024:
        return "must be at most 1024 characters"
    if username and username.lower() in password.lower():
        return "must not contain the username"
    if len(set(password)) < 5:
        return "is too repetitive"
    return None
