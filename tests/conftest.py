"""Shared fixtures: database URLs for both backends, services, and live servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness import STRONG_SECRET as SECRET
from harness import LiveServer, make_config
from meetings import db as database
from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.services import Services
from pg_server import PostgresServer, available, shared_server


@pytest.fixture(scope="session")
def pg_server() -> PostgresServer:
    ok, reason = available()
    if not ok:
        pytest.skip(f"PostgreSQL server cannot be started here: {reason}")
    return shared_server()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return database.sqlite_url_for(tmp_path / "test.db")
    server = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
def migrated_url(db_url: str) -> str:
    database.upgrade(db_url)
    return db_url


@pytest.fixture
async def services(migrated_url: str) -> AsyncIterator[Services]:
    svc = Services.build(Database(migrated_url), MeetingsConfig(), SECRET)
    yield svc
    await svc.db.dispose()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server with demo data per test module (tests must not depend on each other's writes)."""
    server = LiveServer(make_config(tmp_path_factory.mktemp("live"))).start()
    yield server
    server.stop()
