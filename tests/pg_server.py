"""Throwaway PostgreSQL servers for the test suite.

The helper runs a private PostgreSQL cluster straight from Debian's
``postgresql`` package binaries (``/usr/lib/postgresql/<version>/bin``; the
newest installed version is used). The system cluster and its service are not
touched. Each :class:`PostgresServer`:

* ``initdb``s a cluster into a fresh temporary directory,
* listens on TCP ``127.0.0.1`` only, on a free port, with its unix socket
  inside that temporary directory,
* runs with ``fsync=off``, ``full_page_writes=off`` and
  ``synchronous_commit=off`` (durability is worthless for tests),
* creates a password-authenticated (``scram-sha-256``) login role and a
  database owned by it,
* hands out SQLAlchemy URLs of the form
  ``postgresql+psycopg://USER:PASS@127.0.0.1:PORT/DBNAME``, which work with
  both ``create_engine`` and ``create_async_engine``.

``initdb`` and ``postgres`` refuse to run as root. When the tests run as root
(CI does), every server-side command runs as the ``postgres`` system user via
``runuser -u postgres --`` and the temporary directory is chowned to it.

The server is stopped (``pg_ctl stop -m immediate``) and its directory removed
by :meth:`PostgresServer.stop`, by leaving the ``with`` block, when the object
is garbage-collected, and at interpreter exit (``weakref.finalize``), so a
failing test run does not leave servers behind. A ``kill -9`` of the test
process itself cannot be cleaned up after; such orphans are harmless (random
port, loopback only) and disappear with the container.

Typical use from a ``conftest.py``::

    import pytest
    from pg_server import available, shared_server

    @pytest.fixture(scope="session")
    def pg_server():
        ok, reason = available()
        if not ok:
            pytest.skip(reason)
        return shared_server()

    @pytest.fixture
    def pg_url(pg_server):
        return pg_server.create_database()   # fresh, empty database per test

Environment overrides: ``CABINET_PG_BINDIR`` (directory holding ``initdb``,
``pg_ctl`` and ``postgres``), ``CABINET_PG_TMPDIR`` (parent of the temporary
directories).
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import quote

__all__ = [
    "PostgresServer",
    "PostgresServerError",
    "available",
    "find_bindir",
    "shared_server",
]

HOST = "127.0.0.1"
OS_USER = "postgres"  # system user the server runs as when we are root
SUPERUSER = "postgres"  # bootstrap superuser inside the cluster (socket + trust only)
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")

_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PG_ENV_VARS = (
    "PGDATA", "PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD",
    "PGDATABASE", "PGOPTIONS", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE",
    "PGSSLMODE", "PGTZ", "PGCLIENTENCODING", "PGTARGETSESSIONATTRS",
)


class PostgresServerError(RuntimeError):
    """The throwaway server could not be started or used."""


# --------------------------------------------------------------------------- discovery


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split("."))


def _has_binaries(d: Path) -> bool:
    return all(os.access(d / b, os.X_OK) for b in REQUIRED_BINARIES)


def find_bindir() -> Path | None:
    """Directory with initdb/pg_ctl/postgres: $CABINET_PG_BINDIR, else the newest
    /usr/lib/postgresql/<version>/bin, else wherever ``initdb`` is on $PATH."""
    env = os.environ.get("CABINET_PG_BINDIR")
    if env:
        return Path(env) if _has_binaries(Path(env)) else None
    candidates: list[tuple[tuple[int, ...], Path]] = []
    if DEBIAN_PG_ROOT.is_dir():
        for entry in DEBIAN_PG_ROOT.iterdir():
            if re.fullmatch(r"\d+(\.\d+)?", entry.name) and _has_binaries(entry / "bin"):
                candidates.append((_version_key(entry.name), entry / "bin"))
    if candidates:
        return max(candidates)[1]
    on_path = shutil.which("initdb")
    if on_path and _has_binaries(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    return None


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def available() -> tuple[bool, str]:
    """Can a throwaway server be started here? Returns ``(ok, reason)``; when
    not ok, ``reason`` is meant for ``pytest.skip(reason)``."""
    if not hasattr(os, "geteuid"):
        return False, "throwaway PostgreSQL needs a POSIX system"
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CABINET_PG_BINDIR"):
            return False, (
                f"CABINET_PG_BINDIR={os.environ['CABINET_PG_BINDIR']} does not contain "
                f"{', '.join(REQUIRED_BINARIES)}"
            )
        return False, (
            "PostgreSQL server binaries not found (looked in "
            f"{DEBIAN_PG_ROOT}/*/bin and $PATH); install them with "
            "`sudo bash scripts/install-system-deps.sh` (Debian package 'postgresql')"
        )
    if _running_as_root():
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return False, (
                f"running as root, but there is no '{OS_USER}' system user to run "
                "initdb/postgres as (they refuse to run as root)"
            )
        if shutil.which("runuser") is None:
            return False, "running as root, but `runuser` (util-linux) is missing"
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:  # pragma: no cover - psycopg is a project dependency
        return False, f"psycopg is not importable: {exc}"
    return True, f"PostgreSQL binaries in {bindir}"


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _world_traversable(path: Path) -> bool:
    """True if every directory from / down to ``path`` is o+x (so the postgres
    user can reach a directory we create inside it)."""
    p = path.resolve()
    for d in [p, *p.parents]:
        try:
            if not d.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PG_ENV_VARS}
    env["LC_ALL"] = "C"
    env.pop("LANG", None)
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _State:
    """Everything the finalizer needs; must not reference the server object."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.owner_pid = os.getpid()
        self.root: Path | None = None
        self.datadir: Path | None = None
        self.bindir: Path | None = None
        self.as_postgres = False
        self.admin_conn: Any = None
        self.running = False

    def wrap(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", OS_USER, "--", *argv] if self.as_postgres else argv

    def run(self, argv: list[str], *, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.wrap(argv),
            cwd=self.root,  # the postgres user may not be able to read our cwd
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise PostgresServerError(
                f"{' '.join(argv)} failed with exit code {proc.returncode}:\n{proc.stdout.strip()}"
            )
        return proc


def _cleanup(state: _State) -> None:
    """Stop the server (immediate mode) and delete its directory. Idempotent,
    never raises: it runs from finalizers and atexit. A forked child that
    exits normally must not stop its parent's server, hence the pid check."""
    if os.getpid() != state.owner_pid:
        return
    with state.lock:
        conn, state.admin_conn = state.admin_conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
        if state.running and state.datadir is not None and state.bindir is not None:
            try:
                state.run(
                    [str(state.bindir / "pg_ctl"), "stop", "-D", str(state.datadir),
                     "-m", "immediate", "-w", "-t", "10"],
                    timeout=20, check=False,
                )
            except Exception:
                pass
            # Belt and braces: if the postmaster is still there, kill it.
            pidfile = state.datadir / "postmaster.pid"
            try:
                pid = int(pidfile.read_text().splitlines()[0])
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
            state.running = False
        if state.root is not None:
            shutil.rmtree(state.root, ignore_errors=True)
            state.root = None
            state.datadir = None


# --------------------------------------------------------------------------- server


class PostgresServer:
    """A private, disposable PostgreSQL server on 127.0.0.1.

    ``start()`` returns ``self``; ``url()`` gives the URL of the default
    database; ``create_database()`` makes another empty database (owned by the
    test role) and returns its URL. Use as a context manager or call ``stop()``.
    """

    def __init__(
        self,
        *,
        user: str = "cabinet",
        password: str | None = None,
        dbname: str = "cabinet",
        superuser: bool = False,
        settings: Mapping[str, str | int] | None = None,
        bindir: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        for label, ident in (("user", user), ("dbname", dbname)):
            if not _IDENT_RE.match(ident):
                raise ValueError(f"{label} must match {_IDENT_RE.pattern}: {ident!r}")
        self.user = user
        self.password = password or secrets.token_hex(16)
        self.dbname = dbname
        self.superuser = superuser
        self.extra_settings = dict(settings or {})
        self._bindir_arg = Path(bindir) if bindir else None
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.startup_seconds: float | None = None
        self._counter = itertools.count(1)
        self._state = _State()
        self._finalizer = weakref.finalize(self, _cleanup, self._state)

    # ---- public API ------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._state.running

    @property
    def bindir(self) -> Path | None:
        return self._state.bindir

    @property
    def root(self) -> Path | None:
        """The temporary directory (data dir, socket dir and log live in it)."""
        return self._state.root

    @property
    def socket_dir(self) -> Path | None:
        return self._state.root / "sock" if self._state.root else None

    @property
    def log_path(self) -> Path | None:
        return self._state.root / "postgres.log" if self._state.root else None

    def start(self) -> "PostgresServer":
        if self._state.running:
            return self
        ok, reason = available()
        if not ok and self._bindir_arg is None:
            raise PostgresServerError(reason)
        t0 = time.monotonic()
        try:
            self._start()
        except BaseException:
            _cleanup(self._state)
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop the server and delete its files. Safe to call more than once."""
        _cleanup(self._state)

    def url(self, dbname: str | None = None) -> str:
        """SQLAlchemy URL (``postgresql+psycopg://``) for ``dbname`` (default: the
        database created at start)."""
        self._require_running()
        return (
            f"postgresql+psycopg://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{HOST}:{self.port}/{quote(dbname or self.dbname, safe='')}"
        )

    def conninfo(self, dbname: str | None = None) -> str:
        """libpq conninfo string for ``psycopg.connect()``, as the test role."""
        self._require_running()
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=HOST, port=self.port, user=self.user,
            password=self.password, dbname=dbname or self.dbname,
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database owned by the test role; returns its URL.
        Without ``name`` a unique one (``test_<n>``) is chosen."""
        self._require_running()
        if name is None:
            name = f"test_{next(self._counter)}_{secrets.token_hex(3)}"
        if not _IDENT_RE.match(name):
            raise ValueError(f"database name must match {_IDENT_RE.pattern}: {name!r}")
        from psycopg import sql

        self._admin_execute(
            sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template1").format(
                sql.Identifier(name), sql.Identifier(self.user)
            )
        )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting anyone still using it."""
        self._require_running()
        from psycopg import sql

        self._admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self.port}" if self.running else "stopped"
        return f"<PostgresServer {state} user={self.user} db={self.dbname}>"

    # ---- internals -------------------------------------------------------

    def _require_running(self) -> None:
        if not self._state.running:
            raise PostgresServerError("PostgreSQL server is not running (call start())")

    def _admin_execute(self, statement: Any) -> None:
        with self._state.lock:
            conn = self._state.admin_conn
            if conn is None or conn.closed:
                conn = self._state.admin_conn = self._admin_connect()
            conn.execute(statement)

    def _admin_connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=SUPERUSER,
            dbname="postgres", autocommit=True, connect_timeout=5,
        )

    def _chown(self, path: Path) -> None:
        if self._state.as_postgres:
            pw = pwd.getpwnam(OS_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _settings(self, port: int) -> dict[str, str | int]:
        settings: dict[str, str | int] = {
            "listen_addresses": HOST,
            "port": port,
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "password_encryption": "scram-sha-256",
            "max_connections": 200,
            "shared_buffers": "32MB",
            "TimeZone": "UTC",
            "log_timezone": "UTC",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_min_error_statement": "error",
        }
        settings.update(self.extra_settings)
        return settings

    @staticmethod
    def _conf_lines(settings: Mapping[str, str | int]) -> Iterable[str]:
        for key, value in settings.items():
            text = str(value).replace("'", "''")
            yield f"{key} = '{text}'\n"

    def _start(self) -> None:
        st = self._state
        st.bindir = self._bindir_arg or find_bindir()
        if st.bindir is None:
            raise PostgresServerError(available()[1])
        st.as_postgres = _running_as_root()

        parent = os.environ.get("CABINET_PG_TMPDIR") or tempfile.gettempdir()
        if st.as_postgres and not _world_traversable(Path(parent)):
            parent = "/tmp"
        st.root = Path(tempfile.mkdtemp(prefix="cabinet-pg-", dir=parent))
        st.datadir = st.root / "data"
        (st.root / "sock").mkdir(mode=0o700)
        self._chown(st.root)
        self._chown(st.root / "sock")

        # Local (unix socket) connections are trusted: only the superuser uses
        # them, for administration. TCP on 127.0.0.1 needs a SCRAM password.
        st.run(
            [
                str(st.bindir / "initdb"),
                "-D", str(st.datadir),
                "-U", SUPERUSER,
                "-E", "UTF8",
                "--no-locale",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=120,
        )

        conf = st.datadir / "postgresql.conf"
        last_error: Exception | None = None
        for _attempt in range(5):
            port = _free_port()
            # Appended settings win over earlier ones (last occurrence counts).
            with conf.open("a") as fh:
                fh.write("\n# --- tests/pg_server.py ---\n")
                fh.writelines(self._conf_lines(self._settings(port)))
            proc = st.run(
                [
                    str(st.bindir / "pg_ctl"), "start",
                    "-D", str(st.datadir),
                    "-l", str(self.log_path),
                    "-w", "-t", str(int(self.start_timeout)),
                ],
                timeout=self.start_timeout + 15, check=False,
            )
            if proc.returncode == 0:
                st.running = True
                self.port = port
                break
            log = _tail(self.log_path)
            last_error = PostgresServerError(
                f"pg_ctl start failed (exit {proc.returncode}):\n{proc.stdout.strip()}\n"
                f"--- {self.log_path} ---\n{log}"
            )
            if "already in use" not in log and "could not bind" not in log:
                break  # not a port race: retrying will not help
        if not st.running:
            raise last_error or PostgresServerError("pg_ctl start failed")

        self._wait_ready()
        self._create_role_and_db()

    def _wait_ready(self) -> None:
        """pg_ctl -w already waited for 'ready'; also make sure we can log in."""
        import psycopg

        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                self._state.admin_conn = self._admin_connect()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresServerError(
                        f"PostgreSQL did not accept connections within {self.start_timeout}s: {exc}\n"
                        f"--- {self.log_path} ---\n{_tail(self.log_path)}"
                    ) from exc
                time.sleep(0.05)

    def _create_role_and_db(self) -> None:
        from psycopg import sql

        role_opts = sql.SQL("SUPERUSER" if self.superuser else "NOSUPERUSER CREATEDB")
        self._admin_execute(
            sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                sql.Identifier(self.user), role_opts, sql.Literal(self.password)
            )
        )
        self._admin_execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(self.dbname), sql.Identifier(self.user)
            )
        )


# --------------------------------------------------------------------------- shared instance

_shared: PostgresServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> PostgresServer:
    """One server per process, started on first use and stopped at exit. Meant
    for a session-scoped fixture; combine with ``create_database()`` to give
    each test its own empty database."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.running:
            _shared = PostgresServer().start()
        return _shared
