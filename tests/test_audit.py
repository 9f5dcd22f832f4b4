"""The audit chain: written by every privileged change, verified, and broken by any tampering."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import create_engine, select, text

from harness import STRONG_SECRET as SECRET
from meetings import db as database
from meetings.audit import canonical_row
from meetings.audit_checkpoints import CheckpointFile, CheckpointSigner, scan
from meetings.models import AuditEvent
from meetings.tokens import derive_key
from meetings.config import MeetingsConfig
from meetings.db import Database
from meetings.policy import Caller
from meetings.services import Services

CLI = Caller.cli()
EVENTS = AuditEvent.__table__


def tamper(url: str, *statements: str) -> None:
    """What an intruder with database access does: drop the guard, then edit."""
    engine = create_engine(database.sync_url(url))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
                conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
            else:
                conn.execute(text("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events"))
            for statement in statements:
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


async def rows(url: str) -> list[dict[str, object]]:
    engine = create_engine(database.sync_url(url))
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(EVENTS).order_by(EVENTS.c.seq))]
    finally:
        engine.dispose()


def rechain(url: str, edits: dict[int, dict[str, object]], *, drop: tuple[int, ...] = (),
            key: bytes | None = None) -> None:
    """What an intruder with database access but without the key does: edit or drop rows, then re-chain
    everything after them (plain SHA-256, or HMAC under a key of their own) and move the head."""
    engine = create_engine(database.sync_url(url))
    try:
        with engine.connect() as conn:
            current = [SimpleNamespace(**r._mapping) for r in conn.execute(select(EVENTS).order_by(EVENTS.c.seq))]
        first = min([*edits, *drop])
        statements = [f"DELETE FROM audit_events WHERE seq >= {first}"]
        prev = current[first - 2].hash if first > 1 else "0" * 64
        kept = [r for r in current if r.seq not in drop]
        for new_seq, row in enumerate(kept, start=1):
            if new_seq < first:
                continue
            for name, value in edits.get(row.seq, {}).items():
                setattr(row, name, value)
            row.seq, row.prev_hash = new_seq, prev
            canonical = canonical_row(row)  # type: ignore[arg-type]
            row.hash = (hmac.new(key, canonical, hashlib.sha256) if key else hashlib.sha256(canonical)).hexdigest()
            prev = row.hash
            statements.append(str(EVENTS.insert().values(**vars(row)).compile(
                engine, compile_kwargs={"literal_binds": True})))
        statements.append(f"UPDATE audit_head SET seq = {len(kept)}, hash = '{prev}' WHERE id = 1")
        tamper(url, *statements)
    finally:
        engine.dispose()


async def test_edited_row_with_every_later_hash_recomputed_is_caught(services: Services, migrated_url: str) -> None:
    """Editing a row and recomputing the chain after it: without the key, the edited row's hash is wrong."""
    await make_events(services, 6)
    rechain(migrated_url, {3: {"address": "10.0.0.66"}})
    result = await services.audit.verify(CLI)
    assert not result.ok and result.broken_seq == 3 and "keyed hash" in result.problem
    rechain(migrated_url, {3: {"address": "10.0.0.67"}}, key=b"a guess at the key")
    assert not (await services.audit.verify(CLI)).ok


async def test_deleted_row_and_rechained_tail_is_caught(services: Services, migrated_url: str) -> None:
    await make_events(services, 6)
    rechain(migrated_url, {}, drop=(4,))
    result = await services.audit.verify(CLI)
    assert not result.ok and result.broken_seq == 4 and "keyed hash" in result.problem


def truncate(url: str, keep: int, head_hash: str) -> None:
    """Drop rows from the end and move the head back: the shorter chain is valid by itself."""
    tamper(url, f"DELETE FROM audit_events WHERE seq > {keep}",
           f"UPDATE audit_head SET seq = {keep}, hash = '{head_hash}' WHERE id = 1")


async def test_truncated_tail_with_the_head_moved_back_is_caught_by_the_checkpoint_file(
        migrated_url: str, tmp_path: Path) -> None:
    kept = Services.build(Database(migrated_url), MeetingsConfig(), SECRET, tmp_path)
    try:
        await make_events(kept, 6)
        checkpoints = CheckpointFile(tmp_path / "audit").read()
        assert [c.seq for c in checkpoints] == [1, 2, 3, 4, 5, 6]
        assert all(kept.db.audit_trail.signer.valid(c) for c in checkpoints)  # type: ignore[union-attr]
        assert (await kept.audit.verify(CLI)).checkpoints == 6
        truncate(migrated_url, 4, (await rows(migrated_url))[3]["hash"])  # type: ignore[arg-type]
        result = await kept.audit.verify(CLI)
        assert not result.ok and result.broken_seq == 5 and "rows removed from the end" in result.problem
        assert "audit-checkpoints.log:6" in result.problem
        # Without the file the shorter chain is consistent: the checkpoints are what catch this.
        (tmp_path / "audit" / "audit-checkpoints.log").unlink()
        assert (await kept.audit.verify(CLI)).ok
        # A copy kept elsewhere (a log, printed minutes) catches it too.
        result = await kept.audit.verify(CLI, checkpoints[5:])
        assert not result.ok and "rows removed from the end" in result.problem
    finally:
        await kept.db.dispose()


async def test_a_checkpoint_not_signed_with_the_key_fails_the_check(migrated_url: str, tmp_path: Path) -> None:
    kept = Services.build(Database(migrated_url), MeetingsConfig(), SECRET, tmp_path)
    try:
        await make_events(kept, 2)
        file = tmp_path / "audit" / "audit-checkpoints.log"
        line = file.read_text().splitlines()[-1]
        forged = re.sub(r"seq=2 ", "seq=9 ", line)
        file.write_text(file.read_text() + forged + "\n")
        result = await kept.audit.verify(CLI)
        assert not result.ok and "not signed with this server's key" in result.problem
        assert "audit-checkpoints.log:3" in result.problem
    finally:
        await kept.db.dispose()


def test_checkpoints_are_found_in_any_text_and_signed_per_key() -> None:
    signer = CheckpointSigner(derive_key(SECRET, "audit-checkpoint"))
    checkpoint = signer.sign(12, "ab" * 32, dt.datetime(2026, 11, 26, 9, 30, 5, 123, tzinfo=dt.UTC))
    text = f'{{"level": "INFO", "message": "{checkpoint.text()}"}}\nnoise\nAudit trail checkpoint: {checkpoint.text()}'
    found = scan(text, "log")
    assert [(c.seq, c.hash, c.at_text, c.source) for c in found] == [(12, "ab" * 32, "2026-11-26T09:30:05Z", "log:1"),
                                                                      (12, "ab" * 32, "2026-11-26T09:30:05Z", "log:3")]
    assert all(signer.valid(c) for c in found)
    other = CheckpointSigner(derive_key(SECRET + "x", "audit-checkpoint"))
    assert not other.valid(checkpoint)
    assert not signer.valid(replace(checkpoint, seq=13))
    assert not signer.valid(replace(checkpoint, at=checkpoint.at + dt.timedelta(seconds=1)))


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


def test_cli_audit_verify_holds_the_chain_to_checkpoints_kept_elsewhere(tmp_path: Path) -> None:
    """Truncation with the head moved back, caught by the checkpoint file, or by a line kept on paper."""
    env = {"PATH": "/usr/bin:/bin", "CABINET_SERVER__DATA_DIR": str(tmp_path), "CABINET_SERVER__LOG_LEVEL": "WARNING"}
    run = [sys.executable, "-m", "cabinet.cli"]
    assert subprocess.run([*run, "demo", "load"], capture_output=True, env=env, timeout=120).returncode == 0
    printed = subprocess.run([*run, "audit", "checkpoint"], capture_output=True, text=True, env=env, timeout=60)
    [paper] = scan(printed.stdout, "stdout")
    ok = subprocess.run([*run, "audit", "verify"], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0 and f"(the latest names row #{paper.seq})" in ok.stdout, ok.stdout
    url = database.sqlite_url_for(tmp_path / "cabinet.db")
    engine = create_engine(database.sync_url(url))
    with engine.connect() as conn:
        keep_hash = conn.execute(text("SELECT hash FROM audit_events WHERE seq = 3")).scalar_one()
    engine.dispose()
    truncate(url, 3, keep_hash)
    broken = subprocess.run([*run, "audit", "verify"], capture_output=True, text=True, env=env, timeout=60)
    assert broken.returncode == 1 and "rows removed from the end" in broken.stdout, broken.stdout
    (tmp_path / "audit" / "audit-checkpoints.log").unlink()
    fooled = subprocess.run([*run, "audit", "verify"], capture_output=True, text=True, env=env, timeout=60)
    assert fooled.returncode == 0 and "warning: no signed checkpoint" in fooled.stdout
    held = subprocess.run([*run, "audit", "verify", "--checkpoint", paper.text()], capture_output=True, text=True,
                          env=env, timeout=60)
    assert held.returncode == 1 and f"names row {paper.seq}" in held.stdout, held.stdout
