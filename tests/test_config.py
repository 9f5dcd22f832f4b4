"""Configuration: defaults < TOML < environment < command line; bad keys, types and secrets refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cabinet.config import load_config
from cabinet.errors import ConfigError

STRONG = "Zq8-vT2#mW9pL4xR7nB1cK6yH3jF5dS0aE!"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cabinet.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file_and_contact_no_ice_server() -> None:
    config = load_config(None, env={})
    assert config.web.host == "127.0.0.1" and config.web.port == 8080
    assert config.meetings.database_url == ""  # SQLite in the data directory
    assert config.media.ice_servers == []
    assert config.server.data_dir == "data"


def test_file_then_environment_then_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[web]\nport = 9000\nhost = "0.0.0.0"\n[media]\nice_servers = ["stun:stun.example:3478"]\n')
    config = load_config(path, env={})
    assert (config.web.port, config.web.host, config.media.ice_servers) == (9000, "0.0.0.0", ["stun:stun.example:3478"])
    config = load_config(path, env={"CABINET_WEB__PORT": "9100", "CABINET_MEDIA__ICE_SERVERS": "stun:a:1,stun:b:2"})
    assert config.web.port == 9100 and config.media.ice_servers == ["stun:a:1", "stun:b:2"]
    assert config.web.host == "0.0.0.0"
    config = load_config(path, env={"CABINET_WEB__PORT": "9100"}, cli_overrides={"web.port": 9200})
    assert config.web.port == 9200


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[signaling]\nrate_burst = 7\n")
    assert load_config(None, env={"CABINET_CONFIG": str(path)}).signaling.rate_burst == 7


@pytest.mark.parametrize(
    ("toml", "env", "key", "words"),
    [
        ("[web]\nprot = 1\n", {}, "web.prot", "unknown key"),
        ("[webb]\nport = 1\n", {}, "webb", "unknown section"),
        ('[web]\nport = "80"\n', {}, "web.port", "must be an integer"),
        ("[web]\nself_signed = 1\n", {}, "web.self_signed", "must be a boolean"),
        ('[media]\nice_servers = "stun:x"\n', {}, "media.ice_servers", "must be a list"),
        ("[media]\nice_servers = [1]\n", {}, "media.ice_servers[0]", "must be a string"),
        ("", {"CABINET_WEB__PORTT": "1"}, "web.portt", "unknown key"),
        ("", {"CABINET_WEB__PORT": "eighty"}, "web.port", "must be an integer"),
        ("", {"CABINET_WEBPORT": "1"}, "CABINET_WEBPORT", "CABINET_<SECTION>__<KEY>"),
        ("", {"CABINET_WEB__PORT": "70000"}, "web.port", "between 1 and 65535"),
        ('[media]\nice_servers = ["http://x"]\n', {}, "media.ice_servers", "not a stun:"),
        ("[web]\nport = 1\n[web\n", {}, "config file", "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, toml: str, env: dict[str, str], key: str, words: str) -> None:
    path = write(tmp_path, toml) if toml else None
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert info.value.key == key
    assert words in str(info.value)
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("secret", "words"),
    [("changeme", "well-known"), ("short-secret", "too short"), ("a" * 40, "too little variety"),
     ("ab" * 20, "too little variety")],
)
def test_weak_secret_is_refused_without_echoing_it(secret: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"CABINET_MEETINGS__SECRET_KEY": secret})
    assert info.value.key == "meetings.secret_key"
    assert words in str(info.value)
    assert secret not in str(info.value)


def test_strong_secret_accepted_and_masked_in_show() -> None:
    config = load_config(None, env={"CABINET_MEETINGS__SECRET_KEY": STRONG})
    assert config.meetings.secret_key == STRONG
    assert config.redacted()["meetings"]["secret_key"] == "***"


def test_cli_refuses_bad_config_with_the_key_and_exit_status_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[meetings]\nsecret_key = \"changeme\"\n")
    result = subprocess.run([sys.executable, "-m", "cabinet.cli", "config", "check", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "meetings.secret_key" in result.stderr and "changeme" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "cabinet.cli", "config", "show"], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "CABINET_MEETINGS__SECRET_KEY": STRONG})
    assert result.returncode == 0, result.stderr
    assert STRONG not in result.stdout and '"secret_key": "***"' in result.stdout
