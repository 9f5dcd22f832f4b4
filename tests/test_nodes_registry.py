"""The provincial node registry (issue 14): the secretariat registers an office's node (its credential shown
once, only its hash kept), lists and revokes nodes, every change audited; a node authenticates with its
credential, and a malformed, unknown or revoked one is refused, counted into the audit trail, and never
stored, logged or audited itself. Services on both backends; the ``cabinet nodes`` command on SQLite."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from meetings import demo
from meetings.errors import Conflict, NotAuthenticated, NotFound, PermissionDenied, ValidationFailed
from meetings.models import AuditEvent, Base
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.common import principal_of
from meetings.services.nodes import CREDENTIAL_RE, display_prefix
from meetings.services.refusals import ACTION as REFUSED

CLI = Caller.cli()
CABINET = [sys.executable, "-m", "cabinet.cli"]


async def caller_for(services: Services, username: str) -> Caller:
    person = await services.people.find(CLI, username)
    return Caller(principal_of(person), "127.0.0.1")


async def office_id(services: Services, code: str) -> int:
    return next(o.id for o in await services.offices.list(CLI) if o.code == code)


async def audit_rows(services: Services, prefix: str = "") -> list[AuditEvent]:
    async with services.db.read() as session:
        query = select(AuditEvent).order_by(AuditEvent.seq)
        if prefix:
            query = query.where(AuditEvent.action.startswith(prefix))
        return list((await session.execute(query)).scalars())


async def database_text(services: Services) -> str:
    """Every row of every table, as text: what someone who copies the database gets."""
    parts: list[str] = []
    async with services.db.read() as session:
        for table in Base.metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in (await session.execute(select(table))).all())
    return "\n".join(parts)


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)


@pytest.fixture
async def loaded(services: Services) -> Services:
    await demo.load(services, now=dt.datetime(2026, 11, 22, tzinfo=dt.UTC))
    return services


async def test_secretariat_adds_lists_and_revokes_a_node_and_each_change_is_audited(loaded: Services) -> None:
    admin = await caller_for(loaded, "secretariat")
    kratie = await office_id(loaded, "KH-10")
    node, credential = await loaded.nodes.add(admin, office_id=kratie, name="  Kratie   hall ")
    assert CREDENTIAL_RE.fullmatch(credential) and credential.startswith("cabn_")
    assert node.name == "Kratie hall" and node.office.code == "KH-10" and node.active
    assert node.credential_prefix == credential[:13]
    assert node.credential_hash == hashlib.sha256(credential.encode()).hexdigest()
    assert node.created_by_id == admin.actor_id and node.last_seen_at is None and node.revoked_at is None

    seen = await loaded.nodes.authenticate(credential, address="10.10.0.2")
    assert seen.id == node.id and seen.last_seen_at is not None
    assert [n.last_seen_at for n in await loaded.nodes.list(admin)] == [seen.last_seen_at]

    revoked = await loaded.nodes.revoke(admin, node.id)
    assert revoked.revoked_at is not None and revoked.revoked_by_id == admin.actor_id and not revoked.active
    with pytest.raises(NotAuthenticated, match="revoked"):
        await loaded.nodes.authenticate(credential)
    with pytest.raises(Conflict):
        await loaded.nodes.revoke(admin, node.id)
    with pytest.raises(NotFound):
        await loaded.nodes.revoke(admin, 999999)
    assert [n.id for n in await loaded.nodes.list(admin)] == [node.id]
    assert await loaded.nodes.list(admin, include_revoked=False) == []

    events = await audit_rows(loaded, "node.")
    assert [(e.action, e.actor_id, e.target_type, e.target_id) for e in events] == [
        ("node.add", admin.actor_id, "provincial_node", str(node.id)),
        ("node.revoke", admin.actor_id, "provincial_node", str(node.id))]
    for event in events:
        assert json.loads(event.details) == {"office": "KH-10", "name": "Kratie hall",
                                             "credential_prefix": node.credential_prefix}
    assert (await loaded.audit.verify(CLI)).ok


async def test_only_the_secretariat_manages_nodes(loaded: Services) -> None:
    admin = await caller_for(loaded, "secretariat")
    node, _ = await loaded.nodes.add(admin, office_id=await office_id(loaded, "MR-4"), name="MR-4 HQ")
    before = len(await audit_rows(loaded))
    for username in ("chair", "governor", "commander", "observer"):
        caller = await caller_for(loaded, username)
        with pytest.raises(PermissionDenied):
            await loaded.nodes.add(caller, office_id=await office_id(loaded, "MR-4"), name="rogue")
        with pytest.raises(PermissionDenied):
            await loaded.nodes.list(caller)
        with pytest.raises(PermissionDenied):
            await loaded.nodes.revoke(caller, node.id)
    with pytest.raises(NotAuthenticated):
        await loaded.nodes.add(Caller(None, "10.9.9.9"), office_id=node.office_id, name="rogue")
    nodes = await loaded.nodes.list(admin)
    assert [(n.id, n.active) for n in nodes] == [(node.id, True)]
    assert len(await audit_rows(loaded)) == before


async def test_names_are_unique_per_office_among_active_nodes(loaded: Services) -> None:
    admin = await caller_for(loaded, "secretariat")
    kratie, siem_reap = await office_id(loaded, "KH-10"), await office_id(loaded, "KH-17")
    first, _ = await loaded.nodes.add(admin, office_id=kratie, name="hall")
    with pytest.raises(Conflict):
        await loaded.nodes.add(admin, office_id=kratie, name="hall")
    other, _ = await loaded.nodes.add(admin, office_id=siem_reap, name="hall")
    await loaded.nodes.revoke(admin, first.id)
    replacement, credential = await loaded.nodes.add(admin, office_id=kratie, name="hall")
    assert len({first.id, other.id, replacement.id}) == 3
    assert (await loaded.nodes.authenticate(credential)).id == replacement.id
    for bad in (dict(office_id=999999, name="x"), dict(office_id="KH-10", name="x"),
                dict(office_id=kratie, name=""), dict(office_id=kratie, name="x" * 65),
                dict(office_id=kratie, name=None)):
        with pytest.raises(ValidationFailed):
            await loaded.nodes.add(admin, **bad)
    await loaded.offices.update(CLI, siem_reap, active=False)
    with pytest.raises(ValidationFailed):
        await loaded.nodes.add(admin, office_id=siem_reap, name="annex")
    assert len(await loaded.nodes.list(admin)) == 3


async def test_a_node_of_an_office_no_longer_active_is_refused(loaded: Services) -> None:
    node, credential = await loaded.nodes.add(CLI, office_id=await office_id(loaded, "KH-10"), name="hall")
    await loaded.offices.update(CLI, node.office_id, active=False)
    with pytest.raises(NotAuthenticated, match="not active"):
        await loaded.nodes.authenticate(credential)


async def test_malformed_and_unknown_credentials_are_refused_change_nothing_and_are_counted(
        loaded: Services) -> None:
    node, credential = await loaded.nodes.add(CLI, office_id=await office_id(loaded, "KH-10"), name="hall")
    head = len(await audit_rows(loaded))
    wrong_secret = credential[:13] + ("A" if credential[13] != "A" else "B") + credential[14:]
    malformed: list[object] = [None, 42, b"cabn_x", "", "cabn_", credential[:-1], credential + "x",
                               credential + "\n", " " + credential, "cabx_" + credential[5:],
                               credential[:20] + "=" + credential[21:], credential[:20] + "é" + credential[21:]]
    for bad in malformed:
        with pytest.raises(NotAuthenticated, match="malformed"):
            await loaded.nodes.authenticate(bad, address="10.6.6.6")
    unknown = ["cabn_" + "A" * 43, wrong_secret]
    for bad in unknown:
        with pytest.raises(NotAuthenticated, match="unknown node credential"):
            await loaded.nodes.authenticate(bad, address="10.6.6.6")
    [same] = await loaded.nodes.list(CLI)
    assert same.last_seen_at is None and same.revoked_at is None
    assert len(await audit_rows(loaded)) == head  # refusals are only counted until the flush
    assert await loaded.refusals.flush() == 1  # one row per (address, kind, target) and period
    [refused] = await audit_rows(loaded, REFUSED)
    details = json.loads(refused.details)
    assert (refused.address, refused.target_type, refused.target_id) == ("10.6.6.6", "provincial_node", "")
    assert details["kind"] == "node_credential" and details["count"] == len(malformed) + len(unknown)
    assert details["routes"] == ["node authenticate (malformed)", "node authenticate (unknown)"]
    assert credential not in await database_text(loaded)
    assert (await loaded.audit.verify(CLI)).ok


async def test_a_revoked_nodes_refusal_names_the_node_and_its_office(loaded: Services) -> None:
    node, credential = await loaded.nodes.add(CLI, office_id=await office_id(loaded, "MR-4"), name="HQ")
    await loaded.nodes.revoke(CLI, node.id)
    with pytest.raises(NotAuthenticated):
        await loaded.nodes.authenticate(credential, address="10.4.0.1")
    await loaded.refusals.flush()
    [event] = await audit_rows(loaded, REFUSED)
    assert (event.target_type, event.target_id, event.actor_office_id) == ("provincial_node", str(node.id),
                                                                           node.office_id)
    assert json.loads(event.details)["routes"] == ["node authenticate (revoked)"]


async def test_the_credential_is_never_stored_logged_or_audited(loaded: Services,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = await caller_for(loaded, "secretariat")
    node, credential = await loaded.nodes.add(admin, office_id=await office_id(loaded, "KH-10"), name="hall")
    secret_part = credential[13:]
    await loaded.nodes.authenticate(credential, address="10.10.0.2")
    for bad in (credential + "x", credential[:13] + secret_part[::-1]):
        with pytest.raises(NotAuthenticated):
            await loaded.nodes.authenticate(bad)
    await loaded.nodes.revoke(admin, node.id)
    with pytest.raises(NotAuthenticated):
        await loaded.nodes.authenticate(credential)
    await loaded.refusals.flush()
    assert "node credential refused" in caplog.text
    assert secret_part not in logged_text(caplog) and secret_part[::-1] not in logged_text(caplog)
    stored = await database_text(loaded)
    assert node.credential_hash in stored and display_prefix(credential) in stored
    assert secret_part not in stored and secret_part[::-1] not in stored
    assert not any(secret_part in e.details for e in await audit_rows(loaded))


# -- the cabinet command -------------------------------------------------------------------------------
def env_for(data_dir: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CABINET_SERVER__DATA_DIR": str(data_dir),
            "HOME": str(data_dir)}


def cabinet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CABINET, *args], capture_output=True, text=True, env=env, timeout=120)


def test_cabinet_nodes_add_list_revoke(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    assert cabinet(env, "demo", "load").returncode == 0
    added = cabinet(env, "nodes", "add", "--office", "kh-10", "--name", "Kratie hall")
    assert added.returncode == 0, added.stderr
    [credential] = re.findall(r"cabn_[A-Za-z0-9_-]{43}", added.stdout)
    assert "will not be shown again" in added.stdout and credential[:13] in added.stdout

    path = tmp_path / "mr4.credential"
    to_file = cabinet(env, "nodes", "add", "--office", "MR-4", "--name", "HQ", "--credential-file", str(path))
    assert to_file.returncode == 0, to_file.stderr
    written = path.read_text().strip()
    assert CREDENTIAL_RE.fullmatch(written) and (path.stat().st_mode & 0o777) == 0o600
    assert written not in to_file.stdout + to_file.stderr and "will not be shown again" in to_file.stdout
    again = cabinet(env, "nodes", "add", "--office", "MR-4", "--name", "HQ2", "--credential-file", str(path))
    assert again.returncode == 2 and "cannot create" in again.stderr and path.read_text().strip() == written
    duplicate = cabinet(env, "nodes", "add", "--office", "MR-4", "--name", "HQ", "--credential-file",
                        str(tmp_path / "dup"))
    assert duplicate.returncode == 1 and "HQ" in duplicate.stderr and not (tmp_path / "dup").exists()
    assert cabinet(env, "nodes", "add", "--office", "NOPE", "--name", "x").returncode == 2

    revoked = cabinet(env, "nodes", "revoke", "1")
    assert revoked.returncode == 0 and "revoked node 1" in revoked.stdout
    assert cabinet(env, "nodes", "revoke", "1").returncode == 1
    listing = cabinet(env, "nodes", "list").stdout.splitlines()
    assert listing[0].split()[:4] == ["ID", "OFFICE", "NAME", "CREDENTIAL"] and len(listing) == 3
    assert listing[1].startswith("1 ") and "KH-10" in listing[1] and credential[:13] in listing[1]
    assert listing[1].count(dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")) == 2  # created and revoked
    assert "MR-4" in listing[2] and written[:13] in listing[2] and listing[2].rstrip().endswith("-")

    tail = cabinet(env, "audit", "tail", "-n", "5").stdout
    assert "node.add" in tail and "node.revoke" in tail and "via" in tail
    files = [p for p in tmp_path.iterdir() if p.name.startswith("cabinet.db")]
    assert files and all(credential[13:].encode() not in p.read_bytes() for p in files)
    assert all(written[13:].encode() not in p.read_bytes() for p in files)
    for output in (tail, *listing):
        assert credential not in output and written not in output
    assert os.path.exists(tmp_path / "cabinet.db")
