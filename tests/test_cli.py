"""The `cabinet` command as a new user runs it: serve on embedded defaults, log in, manage accounts."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness import Client

CABINET = [sys.executable, "-m", "cabinet.cli"]


def env_for(data_dir: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CABINET_SERVER__DATA_DIR": str(data_dir),
            "HOME": str(data_dir)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_lists_every_subcommand() -> None:
    out = subprocess.run([*CABINET, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in ("serve", "db", "demo", "users", "audit", "config"):
        assert command in out.stdout
    serve = subprocess.run([*CABINET, "serve", "--help"], capture_output=True, text=True, timeout=60).stdout
    for option in ("--host", "--port", "--data-dir", "--tls-cert", "--tls-key", "--self-signed"):
        assert option in serve


def test_serve_on_embedded_defaults_then_log_in(tmp_path: Path) -> None:
    """What README's first command does: empty data dir -> SQLite, secret, demo data, a server."""
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen([*CABINET, "serve", "--demo-if-empty", "--port", str(port)], env=env_for(data),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)

        async def visit() -> None:
            async with Client(f"http://127.0.0.1:{port}") as client:
                assert (await client.login("secretariat")).status == 303
                status, body = await client.page("/offices")
                assert status == 200 and "Office of the Council of Ministers" in body and "ភ្នំពេញ" in body

        asyncio.run(visit())
        assert (data / "cabinet.db").exists()
        secret = data / "secret.key"
        assert secret.exists() and (secret.stat().st_mode & 0o777) == 0o600
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "Cabinet is running at http://127.0.0.1" in output
    assert "demo-password-2026" not in output and secret.read_text().strip() not in output


def test_db_and_user_management(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    current = subprocess.run([*CABINET, "db", "current"], capture_output=True, text=True, env=env, timeout=60)
    assert "revision: empty" in current.stdout
    assert subprocess.run([*CABINET, "db", "upgrade"], capture_output=True, env=env, timeout=120).returncode == 0
    assert subprocess.run([*CABINET, "demo", "load"], capture_output=True, env=env, timeout=120).returncode == 0
    created = subprocess.run([*CABINET, "users", "create", "kratie.gov", "--full-name", "Governor of Kratie",
                              "--office", "KH-10", "--role", "delegate", "--password-stdin"],
                             input="a-strong-kratie-pass\n", capture_output=True, text=True, env=env, timeout=60)
    assert created.returncode == 0, created.stderr
    weak = subprocess.run([*CABINET, "users", "set-password", "kratie.gov", "--password-stdin"], input="short\n",
                          capture_output=True, text=True, env=env, timeout=60)
    assert weak.returncode == 1 and "at least 12" in weak.stderr
    assert subprocess.run([*CABINET, "users", "disable", "kratie.gov"], env=env, capture_output=True,
                          timeout=60).returncode == 0
    listing = subprocess.run([*CABINET, "users", "list"], capture_output=True, text=True, env=env, timeout=60).stdout
    assert "kratie.gov" in listing and "[disabled]" in listing
    tail = subprocess.run([*CABINET, "audit", "tail", "-n", "3"], capture_output=True, text=True, env=env,
                          timeout=60).stdout
    assert "person.update" in tail and "via" in tail
    assert "a-strong-kratie-pass" not in tail


def test_start_on_a_read_only_database_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """Issue 10.9: no traceback, and nothing created (a failed open used to leave read-only -wal/-shm)."""
    data = tmp_path / "data"
    assert subprocess.run([*CABINET, "demo", "load"], capture_output=True, env=env_for(data), timeout=120).returncode == 0
    before = sorted(p.name for p in data.iterdir())
    serve = [*CABINET, "serve", "--port", str(free_port())]
    if os.geteuid() == 0:  # root writes through file modes: make the file system read-only, in a mount namespace
        script = f'mount --bind "{data}" "{data}" && mount -o remount,bind,ro "{data}" && exec "$@"'
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *serve]
    else:
        (data / "cabinet.db").chmod(0o444)
        data.chmod(0o555)
        command = serve
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=env_for(data), timeout=60)
    finally:
        data.chmod(0o700)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert str(data / "cabinet.db") in lines[0] or str(data) in lines[0]
    assert "read-only" in lines[0] and "writable" in lines[0]
    assert sorted(p.name for p in data.iterdir()) == before
