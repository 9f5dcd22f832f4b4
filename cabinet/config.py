"""Configuration: built-in defaults, then a TOML file, then environment variables.

Each package owns one section (a frozen dataclass in its ``config.py``). Environment variables are
``CABINET_<SECTION>__<KEY>`` (e.g. ``CABINET_WEB__PORT=8443``); ``CABINET_CONFIG`` names the TOML file.
Unknown sections or keys, wrong types and weak secrets are refused with a message naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cabinet.errors import ConfigError
from media.config import MediaConfig
from meetings.config import MeetingsConfig
from provincial_nodes.config import ProvincialNodesConfig
from recordings.config import RecordingsConfig
from signaling.config import SignalingConfig
from web.config import WebConfig

ENV_PREFIX = "CABINET_"
ENV_CONFIG_FILE = "CABINET_CONFIG"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "text")
SECRET_KEYS = frozenset({"meetings.secret_key", "meetings.database_url", "media.turn_credential"})


@dataclass(frozen=True)
class ServerConfig:
    """Section ``[server]``: process-wide settings."""

    #: Everything the embedded default writes (database, secret, certificates, recordings) lives here.
    data_dir: str = "data"
    log_level: str = "INFO"
    log_format: str = "json"
    #: Load the demo offices and accounts when the database is empty.
    demo_if_empty: bool = False

    def validate(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.log_level.upper() not in LOG_LEVELS:
            problems.append(("log_level", f"must be one of {', '.join(LOG_LEVELS)}"))
        if self.log_format not in LOG_FORMATS:
            problems.append(("log_format", f"must be one of {', '.join(LOG_FORMATS)}"))
        if not self.data_dir:
            problems.append(("data_dir", "must not be empty"))
        return problems


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    meetings: MeetingsConfig = field(default_factory=MeetingsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    signaling: SignalingConfig = field(default_factory=SignalingConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    provincial_nodes: ProvincialNodesConfig = field(default_factory=ProvincialNodesConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir).expanduser().resolve()

    @property
    def archive_path(self) -> Path:
        """The recording archive's folder (``recordings.directory``, else ``recordings`` in the data folder)."""
        if self.recordings.directory:
            return Path(self.recordings.directory).expanduser().resolve()
        return self.data_path / "recordings"

    def redacted(self) -> dict[str, dict[str, Any]]:
        """The configuration as plain data with secrets replaced, fit for logs and `config show`."""
        out: dict[str, dict[str, Any]] = {}
        for section in dataclasses.fields(self):
            values = dataclasses.asdict(getattr(self, section.name))
            for key, value in values.items():
                if f"{section.name}.{key}" in SECRET_KEYS and value:
                    values[key] = "***"
            out[section.name] = values
        return out


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _coerce(key: str, expected: Any, value: Any, *, from_env: bool) -> Any:
    """Check (and for environment strings, parse) one value against its declared type."""
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(expected) if a is not type(None)]
        if value is None or (from_env and value == ""):
            return None
        return _coerce(key, options[0], value, from_env=from_env)
    if origin is list:
        (item_type,) = typing.get_args(expected)
        if from_env and isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ConfigError(key, f"is not a valid JSON list ({exc.msg})") from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(key, f"must be a list, got {type(value).__name__}")
        return [_coerce(f"{key}[{i}]", item_type, item, from_env=False) for i, item in enumerate(value)]
    if expected is bool:
        if from_env and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ConfigError(key, f"must be a boolean (true/false), got {value!r}")
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be a boolean, got {type(value).__name__}")
        return value
    if expected is int:
        if from_env and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise ConfigError(key, f"must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {type(value).__name__}")
        return value
    if expected is float:
        if from_env and isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise ConfigError(key, f"must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {type(value).__name__}")
        return float(value)
    if expected is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {type(value).__name__}")
        return value
    raise ConfigError(key, f"has an unsupported declared type {expected!r}")  # pragma: no cover


def _apply(
    overrides: dict[str, dict[str, Any]], section: str, key: str, value: Any, *, from_env: bool, origin: str
) -> None:
    sections = _section_types()
    if section not in sections:
        raise ConfigError(section, f"unknown section (from {origin}); known: {', '.join(sections)}")
    section_cls = sections[section]
    hints = typing.get_type_hints(section_cls)
    names = {f.name for f in dataclasses.fields(section_cls)}
    dotted = f"{section}.{key}"
    if key not in names:
        raise ConfigError(dotted, f"unknown key (from {origin}); known: {', '.join(sorted(names))}")
    overrides.setdefault(section, {})[key] = _coerce(dotted, hints[key], value, from_env=from_env)


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    cli_overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration: defaults < TOML file < environment < command-line options."""
    env = os.environ if env is None else env
    overrides: dict[str, dict[str, Any]] = {}
    path = path or env.get(ENV_CONFIG_FILE) or None
    if path is not None:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config file", f"{file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config file", f"{file} is not valid TOML: {exc}") from None
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(section, f"must be a [{section}] table in {file}")
            for key, value in values.items():
                _apply(overrides, section, key, value, from_env=False, origin=str(file))
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE:
            continue
        rest = name[len(ENV_PREFIX) :]
        if "__" not in rest:
            raise ConfigError(name, "environment variables must be CABINET_<SECTION>__<KEY>")
        section, key = rest.split("__", 1)
        _apply(overrides, section.lower(), key.lower(), value, from_env=True, origin=f"environment {name}")
    for dotted, value in (cli_overrides or {}).items():
        section, key = dotted.split(".", 1)
        _apply(overrides, section, key, value, from_env=False, origin="command line")
    sections = {
        name: cls(**overrides.get(name, {})) for name, cls in _section_types().items()
    }
    config = Config(**sections)
    for name in sections:
        for key, problem in getattr(config, name).validate():
            raise ConfigError(f"{name}.{key}", problem)
    return config
