"""Reading the centre's snapshot: each field checked, a precise SnapshotError naming where it failed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .errors import SnapshotError


def get(obj: dict[str, Any], name: str, kind: type, where: str, *, optional: bool = False) -> Any:
    value = obj.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SnapshotError(f"{where}.{name} is missing or not a {kind.__name__}")
    return value


def text(obj: dict[str, Any], name: str, where: str, max_length: int, *, empty: bool = False) -> str:
    value = get(obj, name, str, where)
    if (not value and not empty) or len(value) > max_length:
        raise SnapshotError(f"{where}.{name} must be {0 if empty else 1}..{max_length} characters")
    return str(value)


def time(obj: dict[str, Any], name: str, where: str, *, optional: bool = False) -> dt.datetime | None:
    raw = get(obj, name, str, where, optional=optional)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise SnapshotError(f"{where}.{name} is not an ISO time") from exc
    if value.tzinfo is None:
        raise SnapshotError(f"{where}.{name} has no time zone")
    return value
