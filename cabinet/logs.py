"""Structured logging. Secrets never reach a log: known secret fields and token-like values are masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

SECRET_FIELD = re.compile(r"pass(word)?|secret|token|cookie|authorization|credential|session|csrf", re.I)
#: Scrubbed from free text too: key=value / "key": "value" pairs for secret-looking keys.
SECRET_PAIR = re.compile(
    r"""(?P<key>["']?[\w-]*(?:password|passwd|secret|token|csrf|cookie|authorization|session)[\w-]*["']?\s*[:=]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&}]+)""",
    re.I,
)
STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def scrub(text: str) -> str:
    return SECRET_PAIR.sub(lambda m: f"{m.group('key')}***", text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in STANDARD_ATTRS or key.startswith("_"):
            continue
        out[key] = "***" if SECRET_FIELD.search(key) and key not in ("event",) else value
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        data.update(_extras(record))
        if record.exc_info:
            data["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = scrub(super().format(record))
        extras = _extras(record)
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return text


def configure(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party chatter that could carry addresses or SDP stays at WARNING unless asked for.
    for noisy in ("aioice", "aiortc", "engineio", "socketio", "sqlalchemy.engine", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
