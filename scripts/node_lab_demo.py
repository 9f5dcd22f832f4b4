"""A provincial node beside the centre on one machine, across an emulated WAN (the link lab): one command.

    sudo .venv/bin/python scripts/node_lab_demo.py --profile poor --bots

It starts the link lab with one site (Siem Reap, KH-17) on the chosen link profile, the centre on the
lab's server address (http://198.18.0.1:8080, demo data), registers the province's node, and starts the
node inside the site (http://198.18.1.2:8081), linked to the centre by its control channel and media
pipe across the site's link. With ``--bots`` the chair publishes at the centre and the governor at the
node: sign in at the centre as ``secretariat`` (the demo password is in README.md) and open the weekly
session to see the governor arrive through the node, and ``/nodes`` for the link's rates, loss, round
trip and reconnects. ``--outage 60`` blackholes the WAN for 60 s after a minute. Ctrl-C stops
everything. Needs root and /dev/net/tun (the lab's network namespaces).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linklab import PROFILES, Lab  # noqa: E402
from linklab.lab import check_privileges  # noqa: E402
from meetings.demo import DEMO_PASSWORD  # noqa: E402

CENTRE_PORT, NODE_PORT = 8080, 8081


def cabinet(*args: str) -> list[str]:
    return [sys.executable, "-m", "cabinet.cli", *args]


def wait_for(url: str, what: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url + "/api/session", timeout=1):
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not answer within {timeout:.0f} s")


def bot(url: str, username: str, bind: str, wrap: list[str], log: Path) -> subprocess.Popen[bytes]:
    args = [*wrap, sys.executable, "-m", "bots", "--url", url, "--username", username, "--password-stdin",
            "--meeting", "1", "--publish", "--bind", bind, "--seconds", "86400", "--name", username]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    proc.stdin.write(f"{DEMO_PASSWORD}\n".encode())
    proc.stdin.close()
    return proc


async def demo(profile: str, with_bots: bool, outage: float | None, work: Path) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    async with Lab() as lab:
        site = await lab.add_site("kh17", profile=profile, seed=17)
        centre_url = f"http://{lab.server_address}:{CENTRE_PORT}"
        node_url = f"http://{site.address}:{NODE_PORT}"
        base_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        centre_env = {**base_env, "CABINET_SERVER__DATA_DIR": str(work / "centre"),
                      "CABINET_MEDIA__ICE_BIND_ADDRESSES": lab.server_address}
        try:
            centre = subprocess.Popen(cabinet("serve", "--demo-if-empty", "--host", lab.server_address,
                                              "--port", str(CENTRE_PORT)), cwd=ROOT, env=centre_env,
                                      stdout=open(work / "centre.log", "wb"), stderr=subprocess.STDOUT)
            processes.append(centre)
            wait_for(centre_url, "the centre", centre)
            credential = work / "kh17.credential"
            with open(work / "nodes-add.log", "wb") as log:  # its log lines (the audit checkpoint) go there
                subprocess.run(cabinet("nodes", "add", "--office", "KH-17", "--name", "Siem Reap hall",
                                       "--credential-file", str(credential)), cwd=ROOT, env=centre_env, check=True,
                               stdout=log, stderr=subprocess.STDOUT)
            node_env = {**base_env, "CABINET_MEDIA__ICE_BIND_ADDRESSES": site.address}
            node = subprocess.Popen(site.exec_args(cabinet(
                "node", "--data-dir", str(work / "node"), "--host", site.address, "--port", str(NODE_PORT),
                "--office", "KH-17", "--upstream", centre_url, "--credential-file", str(credential))),
                cwd=ROOT, env=node_env, stdout=open(work / "node.log", "wb"), stderr=subprocess.STDOUT)
            processes.append(node)
            wait_for(node_url, "the node", node)
            if with_bots:
                time.sleep(3)  # the node's first copy of its office (the governor's account)
                processes.append(bot(centre_url, "chair", lab.server_address, [], work / "bot-chair.log"))
                processes.append(bot(node_url, "governor", site.address, site.exec_args([]), work / "bot-governor.log"))
            print(f"""
The centre:  {centre_url}/  (sign in as secretariat; /nodes shows the node's link)
The node:    {node_url}/  (Siem Reap's people sign in here, also when the WAN is cut)
The WAN:     {PROFILES[profile].description if profile in PROFILES else profile}
Logs:        {work}/centre.log, {work}/node.log{', bot-*.log' if with_bots else ''}
Ctrl-C stops everything.""", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            if outage:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 60)
                if not stop.is_set():
                    print(f"The WAN is blackholed for {outage:.0f} s now.", flush=True)
                    await site.set_outage(True, seconds=outage)
            await stop.wait()
        finally:
            for process in reversed(processes):
                if process.poll() is None:
                    process.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(15)
                if process.poll() is None:
                    process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="province", help="the WAN's link profile (linklab): "
                        + ", ".join(PROFILES))
    parser.add_argument("--bots", action="store_true", help="the chair publishes at the centre, the governor at the node")
    parser.add_argument("--outage", type=float, help="blackhole the WAN for this many seconds, a minute in")
    parser.add_argument("--keep", type=Path, help="keep the data and logs here (default: a temporary folder)")
    args = parser.parse_args()
    check_privileges()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        asyncio.run(demo(args.profile, args.bots, args.outage, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="cabinet-node-demo-") as tmp:
            asyncio.run(demo(args.profile, args.bots, args.outage, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
