"""A REAL full disk under a real server process (issue 10, items 5 and 7).

The data directory is a small tmpfs mounted in a private mount namespace that a holder process keeps
alive (``unshare --mount``); the server runs in it (``nsenter``), so it can be killed and started again
on the same tmpfs. The test fills the disk through ``/proc/<holder>/root`` (the namespace's view).
Needs root (mount namespaces); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import DEMO_PASSWORD, Client
from server_process import ROOT, ServerProcess
from session_helpers import SESSION_EVENTS, eventually
from sigclient import SigClient

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"),
    reason="a real full disk needs a tmpfs in a private mount namespace: run as root with unshare and nsenter")

DISK_FULL_MESSAGE = "the server's disk is full; nothing was saved. Tell the administrator"


class Tmpfs:
    """A ``size`` tmpfs at ``mount`` seen only by a holder process's mount namespace and what enters it."""

    def __init__(self, mount: Path, size: str = "40m") -> None:
        self.mount = mount
        mount.mkdir(parents=True, exist_ok=True)
        script = f"mount -t tmpfs -o size={size},mode=0700 tmpfs '{mount}' && echo mounted && exec sleep 600"
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline().decode().strip()
        if line != "mounted":
            self.holder.kill()
            pytest.skip(f"cannot mount a tmpfs in a mount namespace here: {line}")

    @property
    def enter(self) -> list[str]:
        return ["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt", f"--wd={ROOT}", "--"]

    def outside(self, inner: Path) -> Path:
        """The path through which this process reaches ``inner`` on the tmpfs."""
        return Path(f"/proc/{self.holder.pid}/root{inner}")

    def fill(self) -> None:
        """Take every free byte (a runaway log, a huge upload): big writes, then smaller ones."""
        fd = os.open(self.outside(self.mount / "filler"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 12, 1 << 9, 1):
                try:
                    while True:
                        os.write(fd, b"\xff" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)
        free = os.statvfs(self.outside(self.mount))
        assert free.f_bavail == 0, free

    def run(self, script: str) -> Any:
        """Run ``script`` (Python, in the tests' directory) inside the namespace; the JSON it prints last.
        (This process cannot reach the tmpfs by path: the server's configuration resolves the data
        directory, and ``/proc/<pid>/root`` resolves to this namespace's root.)"""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT / "tests"),
               "HOME": str(self.mount)}
        out = subprocess.run([*self.enter, sys.executable, "-c", script], env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    def free(self) -> None:
        self.outside(self.mount / "filler").unlink()

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait(10)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Tmpfs]:
    fs = Tmpfs(tmp_path / "disk")
    try:
        yield fs
    finally:
        fs.close()


def new_session(fs: Tmpfs, data: Path) -> int:
    """A new session; then the WAL is emptied (checkpoint TRUNCATE), so the server's next writes must grow
    it, as on a server whose WAL was checkpointed a while ago (SQLite reuses a WAL's space before growing
    it: a write that fits needs no new block even on a full disk)."""
    return int(fs.run(f"""
import asyncio, json, sqlite3
from pathlib import Path
from server_process import ServerProcess
from session_helpers import new_session
meeting_id = asyncio.run(new_session(ServerProcess(Path({str(data)!r}))))
conn = sqlite3.connect({str(data / "cabinet.db")!r}, timeout=10)
busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
assert busy == 0 and (Path({str(data)!r}) / "cabinet.db-wal").stat().st_size == 0
print(json.dumps(meeting_id))
"""))


def tokens(fs: Tmpfs, data: Path, meeting_id: int, *usernames: str) -> list[str]:
    return list(fs.run(f"""
import asyncio, json
from pathlib import Path
from server_process import ServerProcess
from session_helpers import token_for
server = ServerProcess(Path({str(data)!r}))
async def main():
    return [await token_for(server, name, {meeting_id}) for name in {list(usernames)!r}]
print(json.dumps(asyncio.run(main())))
"""))


async def connect(url: str, token: str, clients: dict[str, SigClient], key: str) -> tuple[SigClient, dict[str, Any]]:
    client = SigClient(url)
    for name in (*SESSION_EVENTS, "alarm"):
        client.sio.on(name, client._recorder(name))
    clients[key] = client
    await client.connect(token)
    return client, await client.call("join")


async def health(url: str) -> tuple[int, dict[str, Any]]:
    async with Client(url) as client:
        return await client.api("GET", "/api/health")


async def login(url: str, username: str) -> tuple[int, Any]:
    async with Client(url) as client:
        status, session = await client.api("GET", "/api/session")
        assert status == 200
        return await client.api("POST", "/api/session", {"username": username, "password": DEMO_PASSWORD},
                                csrf=session["csrf_token"])


def governor_rows(fs: Tmpfs, db: Path, meeting_id: int) -> list[list[Any]]:
    """The governor's attendance rows in the session (read inside the namespace: SQLite resolves the
    ``/proc/<pid>/root`` link to this process's own root)."""
    return list(fs.run(f"""
import json, sqlite3
conn = sqlite3.connect({str(db)!r}, timeout=10)
rows = conn.execute("SELECT person_id, client, joined_at, left_at, end_reason FROM attendance_intervals "
                    "WHERE meeting_id = ? AND person_id = (SELECT id FROM people WHERE username = 'governor') "
                    "ORDER BY id", ({meeting_id},)).fetchall()
print(json.dumps(rows))
"""))


def as_utc(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


async def test_full_disk_clear_errors_health_alarm_and_no_attendance_lost_on_kill(tmpfs: Tmpfs, tmp_path: Path) -> None:
    """Before: login, setting the item and opening a vote answered "internal error", /api/health said "ok",
    the console heard nothing, and a person who joined while the disk was full had no attendance row after a
    kill -9 (failed writes waited only in memory)."""
    inner = tmpfs.mount / "data"
    server = ServerProcess(inner, wrap=tmpfs.enter, log_dir=tmp_path / "log")
    outside = tmpfs.outside(inner)  # the tmpfs, as this process reaches it
    db = inner / "cabinet.db"
    clients: dict[str, SigClient] = {}
    try:
        server.start()
        meeting_id = new_session(tmpfs, inner)
        secretariat_token, governor_token = tokens(tmpfs, inner, meeting_id, "secretariat", "governor")
        console, joined = await connect(server.url, secretariat_token, clients, "secretariat")
        assert joined["permissions"]["moderate"], joined
        assert (await console.call("session", {"action": "open"}))["ok"]
        item_id = joined["agenda"]["items"][0]["id"]
        assert (await health(server.url))[1]["status"] == "ok"

        # -- (a) the disk fills ---------------------------------------------------------------
        tmpfs.fill()
        alarm = await console.wait_for("alarm", lambda a: a["code"] == "disk_full" and not a["cleared"], timeout=10)
        assert "disk is full" in alarm["message"]
        status, body = await health(server.url)
        assert status == 503 and body["status"] == "degraded", body
        assert [p["code"] for p in body["problems"]] == ["disk_full"], body
        for event, data in (("set_agenda_item", {"item_id": item_id}),
                            ("vote_open", {"item_id": item_id, "question": "Adopt the budget?"})):
            reply = await console.call(event, data)
            assert reply == {"ok": False, "error": {"code": "disk_full", "message": DISK_FULL_MESSAGE}}, (event, reply)
        status, reply = await login(server.url, "chair")
        assert status == 507 and reply["error"]["code"] == "disk_full", (status, reply)
        assert reply["error"]["message"] == DISK_FULL_MESSAGE
        # The live session goes on: the room answers, hands go up, the register reads.
        assert (await console.call("ping"))["ok"]
        assert (await console.call("raise_hand"))["ok"]
        assert (await console.call("register"))["ok"]

        # -- (b) someone joins while the disk is full, then the server dies -------------------------
        governor = SigClient(server.url)
        clients["governor"] = governor
        before = dt.datetime.now(dt.UTC)
        await governor.connect(governor_token)
        assert (await governor.call("join"))["ok"]
        after = dt.datetime.now(dt.UTC)
        journal = outside / "journal" / "attendance.jsonl"

        def journaled() -> None:
            assert b'"client":"room"' in journal.read_bytes().split(b"\0", 1)[0]

        await eventually(journaled, timeout=10)
        assert governor_rows(tmpfs, db, meeting_id) == []  # the database refused it
        server.kill()
        for client in clients.values():
            await client.sio.disconnect()
        tmpfs.free()
        server.start()
        rows = governor_rows(tmpfs, db, meeting_id)
        assert len(rows) == 1, rows
        joined_at = as_utc(rows[0][2])
        assert before - dt.timedelta(seconds=1) <= joined_at <= after, (before, joined_at, after)
        assert rows[0][3] is not None and rows[0][4] == "crashed", rows  # ended at its last sign of life

        # -- (c) the disk fills and is freed: the alarm clears, health is ok again -------------------
        (token,) = tokens(tmpfs, inner, meeting_id, "secretariat")
        console, _joined = await connect(server.url, token, clients, "console2")
        tmpfs.fill()
        await console.wait_for("alarm", lambda a: a["code"] == "disk_full" and not a["cleared"], timeout=10)
        assert (await health(server.url))[0] == 503
        tmpfs.free()
        await console.wait_for("alarm", lambda a: a["code"] == "disk_full" and a["cleared"], timeout=10)
        status, body = await health(server.url)
        assert status == 200 and body["status"] == "ok" and body["problems"] == [], body
        assert (await console.call("set_agenda_item", {"item_id": item_id}))["ok"]
    finally:
        for client in clients.values():
            if client.sio.connected:
                await client.sio.disconnect()
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
