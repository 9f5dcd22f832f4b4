"""The audit chain: written by every privileged change, verified, and broken by any tampering."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from meetings import db as database
from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.policy import Caller
from meetings.services import Services

CLI = Caller.cli()


def tamper(url: str, statement: str) -> None:
    """What an intruder with database access does: drop the guard, then edit."""
    engine = create_engine(database.sync_url(url))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(text("DROP TRIGGER audit_events_no_update"))
                conn.execute(text("DROP TRIGGER audit_events_no_delete"))
            else:
                conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
            conn.execute(text(statement))
    finally:
        engine.dispose()


async def make_events(services: Services, count: int) -> None:
    for i in range(count):
        await services.offices.create(CLI, code=f"T{i:02d}", kind="ministry", name_en=f"Test {i}", name_km=f"សាក {i}")


async def test_privileged_changes_are_chained_and_verify(services: Services) -> None:
    await make_events(services, 5)
    result = await services.audit.verify(CLI)
    assert result.ok and result.checked == 5 and result.head_seq == 5
    events = list(reversed(await services.audit.recent(CLI)))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert all(e.action == "office.create" and e.address == "cli" for e in events)
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))


async def test_edited_row_is_reported_as_the_first_broken_link(services: Services, migrated_url: str) -> None:
    await make_events(services, 6)
    tamper(migrated_url, "UPDATE audit_events SET address = '10.9.9.9' WHERE seq = 4")
    result = await services.audit.verify(CLI)
    assert not result.ok and result.broken_seq == 4 and "edited" in result.problem
    assert result.checked == 3


async def test_deleted_rows_are_detected(services: Services, migrated_url: str) -> None:
    await make_events(services, 6)
    tamper(migrated_url, "DELETE FROM audit_events WHERE seq = 2")
    result = await services.audit.verify(CLI)
    assert not result.ok and result.broken_seq == 2 and "missing" in result.problem


async def test_truncated_tail_is_detected_by_the_head(services: Services, migrated_url: str) -> None:
    await make_events(services, 4)
    tamper(migrated_url, "DELETE FROM audit_events WHERE seq = 4")
    result = await services.audit.verify(CLI)
    assert not result.ok and result.broken_seq == 4 and "rows removed" in result.problem


async def test_rehashed_forgery_still_breaks_the_next_link(services: Services, migrated_url: str) -> None:
    """Changing a row and recomputing its own hash still breaks the following row's prev_hash."""
    from meetings.audit import event_hash
    from meetings.models import AuditEvent

    await make_events(services, 3)
    async with services.db.read() as session:
        row = await session.get(AuditEvent, 2)
        assert row is not None
        row.address = "10.0.0.66"
        forged = event_hash(row)
    tamper(migrated_url, f"UPDATE audit_events SET address = '10.0.0.66', hash = '{forged}' WHERE seq = 2")
    result = await services.audit.verify(CLI)
    assert not result.ok and result.broken_seq == 3


async def test_concurrent_writers_keep_a_contiguous_chain(migrated_url: str) -> None:
    """Two independent service stacks (as two processes would be) writing at once."""
    a = Services.build(Database(migrated_url), MeetingsConfig(), "x" * 8 + "0123456789abcdefghijklmnopqrstuv")
    b = Services.build(Database(migrated_url), MeetingsConfig(), "x" * 8 + "0123456789abcdefghijklmnopqrstuv")
    try:
        await asyncio.gather(*[
            (a if i % 2 else b).offices.create(CLI, code=f"C{i:02d}", kind="ministry", name_en=f"C {i}", name_km="ក")
            for i in range(16)
        ])
        result = await a.audit.verify(CLI)
        assert result.ok and result.checked == 16
    finally:
        await a.db.dispose()
        await b.db.dispose()


def test_cli_audit_verify_catches_an_edited_row(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CABINET_SERVER__DATA_DIR": str(tmp_path), "CABINET_SERVER__LOG_LEVEL": "WARNING"}
    run = [sys.executable, "-m", "cabinet.cli"]
    loaded = subprocess.run([*run, "demo", "load"], capture_output=True, text=True, env=env, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    ok = subprocess.run([*run, "audit", "verify"], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stdout + ok.stderr
    tamper(database.sqlite_url_for(tmp_path / "cabinet.db"),
           "UPDATE audit_events SET details = '{\"code\": \"FORGED\"}' WHERE seq = 7")
    broken = subprocess.run([*run, "audit", "verify"], capture_output=True, text=True, env=env, timeout=60)
    assert broken.returncode == 1
    assert "BROKEN at event #7" in broken.stdout
