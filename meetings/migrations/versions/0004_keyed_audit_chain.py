"""audit chain keyed with the server's secret; approved minutes carry a signed checkpoint

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Row hashes become HMAC-SHA256 with a key derived from the server's secret key, which never lives in the
database. Rows already written are re-sealed: their unkeyed chain is verified first, and the upgrade
refuses to seal a chain that is already broken (that would launder the tampering). The key reaches this
migration from ``cabinet db upgrade`` or ``cabinet serve`` (``meetings.db.upgrade(..., audit_key=...)``);
an empty audit trail needs none.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import context, op

from meetings.migrations.append_only import create_append_only_triggers, drop_append_only_triggers
from meetings.models.base import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

GENESIS = "0" * 64
EVENTS = sa.table(
    "audit_events",
    sa.column("seq", sa.Integer), sa.column("created_at", UTCDateTime), sa.column("actor_id", sa.Integer),
    sa.column("actor_office_id", sa.Integer), sa.column("address", sa.String), sa.column("action", sa.String),
    sa.column("target_type", sa.String), sa.column("target_id", sa.String), sa.column("details", sa.Text),
    sa.column("prev_hash", sa.String), sa.column("hash", sa.String),
)
HEAD = sa.table("audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer), sa.column("hash", sa.String))
Hasher = Callable[[bytes], str]


def _canonical(row: SimpleNamespace, prev_hash: str) -> bytes:
    """The row encoding both schemes hash (as in revision 0001 and meetings/audit.py)."""
    when = row.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps([row.seq, when, row.actor_id, row.actor_office_id, row.address, row.action, row.target_type,
                       row.target_id, row.details, prev_hash], ensure_ascii=False, separators=(",", ":")).encode()


def _plain(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _keyed(key: bytes) -> Hasher:
    return lambda data: hmac.new(key, data, hashlib.sha256).hexdigest()


def _audit_key() -> bytes:
    key = context.config.attributes.get("audit_key")
    if not isinstance(key, bytes):
        raise RuntimeError("the audit trail must be re-sealed with the server's secret key: run `cabinet db "
                           "upgrade` (or `cabinet serve`), which reads it, instead of plain alembic")
    return key


def _reseal(old: Callable[[], Hasher], new: Callable[[], Hasher]) -> None:
    """Verify every row under the old scheme, then rewrite the chain's hashes under the new one."""
    bind = op.get_bind()
    rows = [SimpleNamespace(**r._mapping) for r in bind.execute(sa.select(EVENTS).order_by(EVENTS.c.seq))]
    if not rows:
        return
    check, seal = old(), new()
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        if row.seq != expected_seq or row.prev_hash != prev or check(_canonical(row, prev)) != row.hash:
            raise RuntimeError(f"the audit chain is broken at event #{expected_seq} (`cabinet audit verify` on the "
                               "previous version says more); refusing to re-seal a tampered trail: restore the "
                               "database from a backup")
        prev = row.hash
    head = bind.execute(sa.select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)).one()
    if (head.seq, head.hash) != (rows[-1].seq, prev):
        raise RuntimeError(f"the audit head names event #{head.seq} but the chain ends at #{rows[-1].seq}; "
                           "refusing to re-seal a tampered trail")
    drop_append_only_triggers()
    prev = GENESIS
    for row in rows:
        digest = seal(_canonical(row, prev))
        bind.execute(EVENTS.update().where(EVENTS.c.seq == row.seq).values(prev_hash=prev, hash=digest))
        prev = digest
    bind.execute(HEAD.update().where(HEAD.c.id == 1).values(hash=prev))
    create_append_only_triggers()


def upgrade() -> None:
    # Re-seal first: it is what can refuse, and SQLite's DDL is not transactional under Alembic.
    _reseal(old=lambda: _plain, new=lambda: _keyed(_audit_key()))
    op.add_column('minutes', sa.Column('audit_checkpoint', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    _reseal(old=lambda: _keyed(_audit_key()), new=lambda: _plain)
    # Plain ALTER (SQLite >= 3.35 has DROP COLUMN): a batch copy of the table would lose its lock triggers.
    op.execute("ALTER TABLE minutes DROP COLUMN audit_checkpoint")
