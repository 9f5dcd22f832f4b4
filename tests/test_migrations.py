"""Migrations run up from an empty database on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from meetings import db as database
from meetings.models import Base

TABLES = {"offices", "people", "person_roles", "login_sessions", "login_attempts", "meetings", "invitations",
          "audit_events", "audit_head", "alembic_version"}


def test_upgrade_from_empty_downgrade_and_again(db_url: str) -> None:
    assert database.current_revision(db_url) is None
    database.upgrade(db_url)
    assert database.current_revision(db_url) == database.head_revision()
    engine = create_engine(database.sync_url(db_url))
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one() == (0, "0" * 64)
    finally:
        engine.dispose()
    database.downgrade(db_url, "base")
    assert database.current_revision(db_url) is None
    engine = create_engine(database.sync_url(db_url))
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    database.upgrade(db_url)
    assert database.current_revision(db_url) == database.head_revision()


def test_models_and_migrations_agree(migrated_url: str) -> None:
    engine = create_engine(database.sync_url(migrated_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models differ from migrations: {diff}"


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"])
def test_audit_table_is_append_only_in_the_database(migrated_url: str, statement: str) -> None:
    engine = create_engine(database.sync_url(migrated_url))
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO audit_events (seq, created_at, address, action, target_type, target_id, details, "
                "prev_hash, hash) VALUES (1, CURRENT_TIMESTAMP, '', 'test', '', '', '{}', :z, :z)"
            ), {"z": "0" * 64})
        with pytest.raises(DBAPIError) as info, engine.begin() as conn:
            conn.execute(text(statement))
        assert "append-only" in str(info.value)
    finally:
        engine.dispose()
