"""Database access: engine, read and write units of work, and migrations.

``Database.write()`` is the only way to change data. It collects audit events queued during the unit
of work and appends them to the chain in the same transaction, just before commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from meetings import audit
from meetings.audit import PendingEvent
from meetings.audit_trail import AuditTrail
from meetings.errors import DatabaseBusy, DatabaseReadOnly, DiskFull, StorageError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = logging.getLogger("meetings.db")


def async_url(url: str) -> URL:
    """Normalise a configured URL to its async driver (aiosqlite, psycopg 3)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database backend {backend!r}")


def sync_url(url: str) -> URL:
    """The same database through a synchronous driver (used by Alembic)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database backend {backend!r}")


def sqlite_url_for(path: Path) -> str:
    return f"sqlite:///{path}"


def sqlite_write_problem(url: str) -> str | None:
    """Why this SQLite database cannot be written, or None. Checked before anything opens it: a failed
    open would leave behind ``-wal`` and ``-shm`` files that a later fix of the database's mode misses."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database).absolute()
    if not path.exists():
        return None if os.access(path.parent, os.W_OK | os.X_OK) else (
            f"cannot create the database {path}: its directory is not writable by this user")
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            return (f"the database file {file} is read-only for this user (or on a read-only file system): "
                    f"make it writable (chmod u+rw {file}) and start again")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return (f"the database's directory {path.parent} is not writable by this user (or is on a read-only "
                "file system); SQLite keeps its -wal and -shm files there: make it writable and start again")
    return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def configure_sqlite(engine: Any, *, begin: str, busy_ms: int = 10000) -> None:
    """Take transaction control from the driver so writers can BEGIN IMMEDIATE.

    A deferred transaction that reads and then writes fails at once with "database is locked" when
    another connection committed in between (its snapshot is stale; the busy timeout cannot help).
    Writers therefore take the write lock up front, and wait their turn with the busy timeout.
    """

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, record)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()
        dbapi_connection.isolation_level = None

    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


@dataclass
class UnitOfWork:
    """A write transaction: the session plus the audit events it will append at commit."""

    session: AsyncSession
    pending: list[PendingEvent] = field(default_factory=list)

    def audit(
        self,
        action: str,
        *,
        actor_id: int | None,
        actor_office_id: int | None,
        address: str,
        target_type: str = "",
        target_id: str | int = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        self.pending.append(
            PendingEvent(
                action=action,
                actor_id=actor_id,
                actor_office_id=actor_office_id,
                address=address,
                target_type=target_type,
                target_id=str(target_id),
                details=details or {},
            )
        )


def storage_error(exc: DBAPIError) -> StorageError | None:
    """The domain error for a write the machine refused (locked, disk full, read-only), else None."""
    text = str(getattr(exc, "orig", exc)).lower()
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if "database is locked" in text or "database is busy" in text or state in ("55P03", "40P01"):
        return DatabaseBusy("the database is busy; try again")
    if "database or disk is full" in text or state == "53100" or "no space left" in text:
        return DiskFull("the server's disk is full; nothing was saved. Tell the administrator")
    if "readonly database" in text or "read-only" in text or state == "25006":
        return DatabaseReadOnly("the database is read-only; nothing was saved. Tell the administrator")
    return None


class Database:
    def __init__(self, url: str, *, echo: bool = False, busy_seconds: float = 30.0) -> None:
        self.url = url
        #: How long a write waits for another writer (another process holding the SQLite write lock)
        #: before it is answered "the database is busy"; never "internal error".
        self.busy_seconds = busy_seconds
        busy_ms = int(min(10.0, max(0.1, busy_seconds / 3)) * 1000)  # per attempt; retried until busy_seconds
        self.engine: AsyncEngine = create_async_engine(async_url(url), echo=echo, pool_pre_ping=True)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        database = make_url(url).database if self.is_sqlite else None
        #: The SQLite database file (None for PostgreSQL and in-memory databases).
        self.sqlite_path = Path(database).absolute() if database and database != ":memory:" else None
        self.write_engine = self.engine
        if self.is_sqlite:
            self.write_engine = create_async_engine(async_url(url), echo=echo)
            configure_sqlite(self.engine.sync_engine, begin="BEGIN", busy_ms=busy_ms)
            configure_sqlite(self.write_engine.sync_engine, begin="BEGIN IMMEDIATE", busy_ms=busy_ms)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        # SQLite allows one writer; queue this process's writers here instead of failing on "locked".
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        #: The chain key and checkpoint writer; set by ``Services.build`` (no audited write without it).
        self.audit_trail: AuditTrail | None = None
        #: Told of each write's outcome: None once committed, else the StorageError (meetings/storage.py).
        self.observers: list[Callable[[StorageError | None], None]] = []

    def observe(self, outcome: StorageError | None) -> None:
        for observer in list(self.observers):
            observer(outcome)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def _begin_write(self) -> AsyncSession:
        """A session holding the write lock. Another process's lock is waited out, with backoff, for
        ``busy_seconds``: nothing has run yet, so trying again is safe."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.busy_seconds
        pause = 0.05
        while True:
            session = self._write_sessions()
            try:
                await session.begin()
                await session.connection()  # BEGIN IMMEDIATE runs here on SQLite
                return session
            except DBAPIError as exc:
                await session.close()
                error = storage_error(exc)
                if not isinstance(error, DatabaseBusy):
                    raise (error or exc) from exc
                if loop.time() + pause >= deadline:
                    log.warning("database busy; write refused", extra={
                        "event": "db.busy", "waited_seconds": round(self.busy_seconds, 1)})
                    raise error from exc
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[UnitOfWork]:
        if self._write_lock is not None:
            await self._write_lock.acquire()
        try:
            session = await self._begin_write()
            head = None
            try:
                uow = UnitOfWork(session)
                yield uow
                if uow.pending:
                    if self.audit_trail is None:
                        raise RuntimeError("audited write without the audit key: build the database through Services")
                    head = await audit.append(session, self.audit_trail.chain_key, uow.pending)
                await session.commit()
            except DBAPIError as exc:
                await session.rollback()
                error = storage_error(exc)
                if error is None:
                    raise
                log.error("database write failed", extra={"event": f"db.{error.code}", "error": str(exc.orig)[:200]})
                raise error from exc
            except BaseException:
                await session.rollback()
                raise
            finally:
                await session.close()
            self.observe(None)
            if head is not None and self.audit_trail is not None:
                self.audit_trail.committed(head)
        except StorageError as exc:
            self.observe(exc)
            raise
        finally:
            if self._write_lock is not None:
                self._write_lock.release()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


def alembic_config(url: str, audit_key: bytes | None = None) -> Any:
    """``audit_key``: the audit chain's key, for the migrations that re-seal the chain (0004)."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.attributes["audit_key"] = audit_key
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_url(url).render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head", *, audit_key: bytes | None = None) -> None:
    """Apply migrations (synchronous; call outside the event loop or in a thread)."""
    from alembic import command

    command.upgrade(alembic_config(url, audit_key), revision)


def downgrade(url: str, revision: str, *, audit_key: bytes | None = None) -> None:
    from alembic import command

    command.downgrade(alembic_config(url, audit_key), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
