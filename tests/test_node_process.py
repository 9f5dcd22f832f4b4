"""A provincial node as a real process beside the centre (issue 14): started in node mode with its
office's credential file, it fills its own database from the centre and signs the office's people in,
and goes on doing so when the centre is gone (the WAN cut)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from harness import Client, LiveServer, make_config
from meetings.policy import Caller
from meetings.services.common import principal_of
from server_process import ServerProcess

CLI = Caller.cli()


async def register_node(centre: LiveServer, office_code: str, credential_file: Path) -> None:
    services = centre.services()
    try:
        admin = Caller(principal_of(await services.people.find(CLI, "secretariat")), "127.0.0.1")
        office = next(o for o in await services.offices.list(CLI) if o.code == office_code)
        _, credential = await services.nodes.add(admin, office_id=office.id, name=f"{office_code} hall")
    finally:
        await services.db.dispose()
    credential_file.write_text(credential + "\n")
    credential_file.chmod(0o600)


def node_process(tmp_path: Path, centre: LiveServer, credential_file: Path, office: str) -> ServerProcess:
    return ServerProcess(tmp_path / "node", env={
        "CABINET_PROVINCIAL_NODES__UPSTREAM_URL": centre.url,
        "CABINET_PROVINCIAL_NODES__CREDENTIAL_FILE": str(credential_file),
        "CABINET_PROVINCIAL_NODES__OFFICE_CODE": office})


async def signs_in(url: str, username: str) -> bool:
    async with Client(url) as client:
        return (await client.login(username)).status == 303


async def test_a_node_signs_its_office_in_from_its_own_copy_and_goes_on_when_the_centre_is_gone(
        tmp_path: Path) -> None:
    centre = LiveServer(make_config(tmp_path / "centre")).start()
    credential_file = tmp_path / "node.credential"
    node: ServerProcess | None = None
    try:
        await register_node(centre, "KH-17", credential_file)
        node = node_process(tmp_path, centre, credential_file, "KH-17").start()
        for _ in range(150):  # the first snapshot arrives within a second or two of the start
            if await signs_in(node.url, "governor"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the node never signed the governor in: {node.log_tail()}")
        assert not await signs_in(node.url, "commander"), "another office's account is not on this node"
        assert not await signs_in(node.url, "secretariat")
        centre.stop()  # the WAN is cut: the node's own copy signs the office in
        assert await signs_in(node.url, "governor")
    finally:
        if node is not None:
            node.stop()
        centre.stop()


async def test_a_credential_file_others_can_read_is_refused_at_start(tmp_path: Path) -> None:
    credential_file = tmp_path / "node.credential"
    credential_file.write_text("cabn_" + "A" * 43)
    os.chmod(credential_file, 0o644)
    node = ServerProcess(tmp_path / "node", env={
        "CABINET_PROVINCIAL_NODES__UPSTREAM_URL": "http://127.0.0.1:9",
        "CABINET_PROVINCIAL_NODES__CREDENTIAL_FILE": str(credential_file),
        "CABINET_PROVINCIAL_NODES__OFFICE_CODE": "KH-17"})
    with pytest.raises(RuntimeError, match="readable by others"):
        node.start(timeout=30)
    assert "A" * 43 not in node.log_tail(200)
