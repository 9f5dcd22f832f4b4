"""A real Cabinet server in its own process on 127.0.0.1, so a test can kill it (SIGKILL) and start it
again on the same port and data directory. (tests/harness.LiveServer runs in a thread: it can stop,
not die.) The server's output goes to ``server.log`` in the data directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from cabinet.bootstrap import prepare
from cabinet.config import load_config
from meetings.services import Services

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path, port: int | None = None, *, wrap: Sequence[str] = (),
                 log_dir: Path | None = None, env: dict[str, str] | None = None, host: str = "127.0.0.1") -> None:
        """``wrap``: a command the server runs under (e.g. ``nsenter`` into a mount namespace where
        ``data_dir`` is a small tmpfs); ``log_dir``: where ``server.log`` goes (default ``data_dir``);
        ``env``: more environment (configuration) for the server; ``host``: the address it serves and
        gathers ICE candidates on (e.g. a link-lab site's, with ``wrap`` entering the site)."""
        self.host = host
        self.data_dir = data_dir
        self.extra_env = dict(env or {})
        self.wrap = list(wrap)
        self.log_dir = log_dir or data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.data_dir),
                "CABINET_SERVER__DATA_DIR": str(self.data_dir),
                "CABINET_MEDIA__ICE_BIND_ADDRESSES": self.host, "CABINET_WEB__HOST": self.host, **self.extra_env}

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start (demo data when the data directory is empty) and wait until the API answers."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.wrap:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                [*self.wrap, sys.executable, "-m", "cabinet.cli", "serve", "--demo-if-empty", "--port", str(self.port)],
                cwd=ROOT, env=self._env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/session", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {timeout:.0f}s: {self.log_tail()}")
            time.sleep(0.1)

    def services(self) -> Services:
        """Services on the server's database with the server's own key (its data directory's secret.key)."""
        return prepare(load_config(None, env={}, cli_overrides={"server.data_dir": str(self.data_dir)}),
                       migrate=False).services()

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone, as if the machine had lost power."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.log_dir / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
