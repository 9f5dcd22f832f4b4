"""Tests for the throwaway PostgreSQL helper in tests/pg_server.py."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

try:  # tests/ is on sys.path (pytest's default "prepend" import mode, no tests/__init__.py)
    from pg_server import PostgresServer, available
except ImportError:  # tests/ became a package
    from tests.pg_server import PostgresServer, available

_ok, _reason = available()
pytestmark = pytest.mark.skipif(not _ok, reason=_reason)


@pytest.fixture(scope="module")
def server():
    t0 = time.monotonic()
    srv = PostgresServer().start()
    elapsed = time.monotonic() - t0
    print(f"\nthrowaway PostgreSQL started in {elapsed:.2f}s on port {srv.port}")
    try:
        yield srv
    finally:
        root = srv.root
        srv.stop()
        assert root is not None and not root.exists(), "temp dir was not removed"


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port`` from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A == LISTEN
                continue
            assert len(addr_hex) == width
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr_hex)[::-1]))
            else:
                raw = b"".join(bytes.fromhex(addr_hex[i:i + 8])[::-1] for i in range(0, 32, 8))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def test_startup_is_fast(server):
    assert server.startup_seconds is not None
    # Typically ~1.5 s (initdb dominates); the bound only catches pathologies,
    # shared CI machines under load can be several times slower.
    assert server.startup_seconds < 30, f"startup took {server.startup_seconds:.2f}s"


def test_url_shape(server):
    url = server.url()
    assert url.startswith(f"postgresql+psycopg://{server.user}:")
    assert url.endswith(f"@127.0.0.1:{server.port}/{server.dbname}")


def test_sync_psycopg_and_sqlalchemy_on_two_databases(server):
    import psycopg
    from sqlalchemy import create_engine, make_url, text

    url_a = server.create_database()
    url_b = server.create_database("second_db")
    assert url_a != url_b and url_b.endswith("/second_db")

    for url in (url_a, url_b):
        u = make_url(url)
        # Plain psycopg, password over TCP (scram).
        with psycopg.connect(
            host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database
        ) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            db, user = conn.execute("SELECT current_database(), current_user").fetchone()
            assert (db, user) == (u.database, server.user)
            # The fresh database is empty and writable by the test role.
            assert conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone() == (0,)
            conn.execute("CREATE TABLE t (id int)")

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
        finally:
            engine.dispose()


async def test_sqlalchemy_async(server):
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    url = server.create_database()
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
            assert (await conn.execute(text("SHOW TimeZone"))).scalar() == "UTC"
    finally:
        await engine.dispose()


def test_wrong_password_is_rejected(server):
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1", port=server.port, user=server.user,
            password="not-the-password", dbname=server.dbname, connect_timeout=5,
        )


def test_listens_only_on_loopback(server):
    import psycopg

    with psycopg.connect(server.conninfo()) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert str(conn.execute("SELECT inet_server_addr()").fetchone()[0]) == "127.0.0.1"
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)

    if Path("/proc/net/tcp").exists():
        assert _listening_addresses(server.port) == {"127.0.0.1"}

    # Another loopback address must not reach it (0.0.0.0 / ::, would accept this).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.2", server.port)) != 0


def test_drop_database(server):
    import psycopg

    url = server.create_database("to_drop")
    server.drop_database("to_drop")
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(server.conninfo("to_drop"), connect_timeout=5)
    assert url.endswith("/to_drop")


def test_stop_is_idempotent_and_cleans_up():
    srv = PostgresServer(dbname="other").start()
    root, port = srv.root, srv.port
    assert root is not None and root.exists()
    srv.stop()
    srv.stop()
    assert not root.exists()
    assert not srv.running
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0
