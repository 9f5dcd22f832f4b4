"""Start-up: the data directory, the secret key, the database URL, migrations and demo data."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cabinet.config import Config
from cabinet.errors import CabinetError, ConfigError
from meetings import db as database
from meetings.audit_trail import chain_key
from meetings.config import secret_weakness
from meetings.db import Database
from meetings.services import Services

log = logging.getLogger("cabinet")
SECRET_FILE = "secret.key"


def ensure_data_dir(config: Config) -> Path:
    path = config.data_path
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def secret_key(config: Config, data_dir: Path) -> str:
    """The configured secret, or one generated on first run and kept (mode 0600) in the data directory."""
    if config.meetings.secret_key:
        return config.meetings.secret_key
    file = data_dir / SECRET_FILE
    if not file.exists():
        value = secrets.token_urlsafe(48)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        log.info("generated a new secret key", extra={"event": "secret.generated", "file": str(file)})
    value = file.read_text().strip()
    weakness = secret_weakness(value)
    if weakness:
        raise ConfigError("meetings.secret_key", f"the key in {file} {weakness}")
    return value


def database_url(config: Config, data_dir: Path) -> str:
    return config.meetings.database_url or database.sqlite_url_for(data_dir / "cabinet.db")


@dataclass
class Runtime:
    config: Config
    data_dir: Path
    secret_key: str
    database_url: str

    @property
    def audit_key(self) -> bytes:
        return chain_key(self.secret_key)

    def services(self) -> Services:
        return Services.build(Database(self.database_url, busy_seconds=self.config.meetings.database_busy_seconds),
                              self.config.meetings, self.secret_key,
                              self.data_dir)


def prepare(config: Config, *, migrate: bool | None = None) -> Runtime:
    """Everything synchronous that must happen before the event loop starts."""
    data_dir = ensure_data_dir(config)
    problem = database.sqlite_write_problem(database_url(config, data_dir))
    if problem:
        raise CabinetError(problem)
    runtime = Runtime(config, data_dir, secret_key(config, data_dir), database_url(config, data_dir))
    if config.meetings.auto_migrate if migrate is None else migrate:
        database.upgrade(runtime.database_url, audit_key=runtime.audit_key)
    return runtime
