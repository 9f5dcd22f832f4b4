"""Migrations run up from an empty database on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

import datetime as dt
import hashlib
from types import SimpleNamespace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import DBAPIError

from harness import STRONG_SECRET
from meetings import db as database
from meetings.audit import canonical_row
from meetings.audit_trail import chain_key
from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.models import AuditEvent, Base
from meetings.policy import Caller
from meetings.services import Services

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


def _plain_chain(url: str, count: int, *, break_at: int | None = None) -> None:
    """Rows as revision 0003 wrote them: hashed with plain SHA-256, no key."""
    engine = create_engine(database.sync_url(url))
    prev = "0" * 64
    try:
        with engine.begin() as conn:
            for seq in range(1, count + 1):
                row = SimpleNamespace(seq=seq, created_at=dt.datetime(2026, 11, 20, 8, seq, tzinfo=dt.UTC),
                                      actor_id=None, actor_office_id=None, address="cli", action="office.create",
                                      target_type="office", target_id=str(seq), details="{}", prev_hash=prev)
                row.hash = hashlib.sha256(canonical_row(row)).hexdigest()  # type: ignore[arg-type]
                if seq == break_at:
                    row.address = "10.6.6.6"  # edited after hashing
                conn.execute(AuditEvent.__table__.insert().values(**vars(row)))
                prev = row.hash
            conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": count, "h": prev})
    finally:
        engine.dispose()


async def test_upgrade_reseals_an_unkeyed_chain_with_the_key_and_downgrade_undoes_it(db_url: str) -> None:
    database.upgrade(db_url, "0003")
    _plain_chain(db_url, 4)
    with pytest.raises(RuntimeError, match="cabinet db upgrade"):
        database.upgrade(db_url)  # rows to re-seal, and no key given
    assert database.current_revision(db_url) == "0003"
    database.upgrade(db_url, audit_key=chain_key(STRONG_SECRET))
    services = Services.build(Database(db_url), MeetingsConfig(), STRONG_SECRET)
    try:
        result = await services.audit.verify(Caller.cli())
        assert result.ok and result.checked == 4
        await services.offices.create(Caller.cli(), code="NEW", kind="ministry", name_en="New", name_km="ថ្មី")
        assert (await services.audit.verify(Caller.cli())).checked == 5
    finally:
        await services.db.dispose()
    with pytest.raises(DBAPIError, match="append-only"):  # the triggers are back after re-sealing
        engine = create_engine(database.sync_url(db_url))
        try:
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM audit_events"))
        finally:
            engine.dispose()
    database.downgrade(db_url, "0003", audit_key=chain_key(STRONG_SECRET))
    engine = create_engine(database.sync_url(db_url))
    try:
        with engine.connect() as conn:
            rows = [SimpleNamespace(**r._mapping) for r in conn.execute(
                select(AuditEvent.__table__).order_by(text("seq")))]
    finally:
        engine.dispose()
    prev = "0" * 64
    for row in rows:
        assert row.prev_hash == prev and row.hash == hashlib.sha256(canonical_row(row)).hexdigest()
        prev = row.hash


def test_upgrade_refuses_to_seal_a_tampered_chain(db_url: str) -> None:
    database.upgrade(db_url, "0003")
    _plain_chain(db_url, 4, break_at=2)
    with pytest.raises(RuntimeError, match="broken at event #2"):
        database.upgrade(db_url, audit_key=chain_key(STRONG_SECRET))
    assert database.current_revision(db_url) == "0003"
