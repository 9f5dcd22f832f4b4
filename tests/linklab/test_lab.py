"""The lab's life cycle: complete cleanup (also after a crash), the stale-lab cleaner, run-time
profile changes, precise refusals, and the operator's CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from linklab_probes import lab_unavailable

from linklab import Lab, LinkLabError, ProfileError, RelayError
from linklab.netns import list_netns, live_labs, pid_alive


def lo_has_server_address() -> bool:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True).stdout
    return " 198.18.0.1/32 " in out


async def test_a_site_is_configured_and_everything_goes_at_close() -> None:
    if lab_unavailable():
        pytest.skip(lab_unavailable())
    async with Lab() as lab:
        site = await lab.add_site("life", "province", seed=1)
        assert site.netns in list_netns() and site.address == f"198.18.{site.index}.2"
        assert lab.server_address == "198.18.0.1" and lo_has_server_address()
        proc = await asyncio.create_subprocess_exec(*site.exec_args(["ip", "-4", "-o", "addr"]),
                                                    stdout=asyncio.subprocess.PIPE)
        addrs = (await proc.communicate())[0].decode()
        assert "lo    inet 127.0.0.1/8" in addrs and f"inet {site.address}/32" in addrs
        assert site.exec_args(["true"]) == ["ip", "netns", "exec", site.netns, "true"]
        # A process left running inside the site is ended with it.
        sleeper = await asyncio.create_subprocess_exec(*site.exec_args(["sleep", "60"]))
        relay_pid = site.process.pid  # type: ignore[union-attr]
        await site.set_profile("edge,loss_pct=0")
        assert site.profile.uplink.rate_kbit == 512
        assert (await site.command({"cmd": "counters"}))["profile"] == "edge,loss_pct=0"
        with pytest.raises(ProfileError, match="unknown profile"):
            await site.set_profile("nowhere")
        with pytest.raises(RelayError, match="unknown command"):
            await site.command({"cmd": "reboot"})
        with pytest.raises(LinkLabError, match="already exists"):
            await lab.add_site("life")
        with pytest.raises(LinkLabError, match="must be 1-16 characters"):
            await lab.add_site("Bad_Name")
    assert site.netns not in list_netns()
    assert not pid_alive(relay_pid)
    assert await asyncio.wait_for(sleeper.wait(), 5) != 0
    assert not os.path.exists(f"/sys/class/net/{site.root_interface}")
    if not live_labs(exclude_pid=os.getpid()):  # another lab (an operator's) would keep it
        assert not lo_has_server_address()


async def test_a_crashed_lab_leaves_nothing_the_next_lab_does_not_remove() -> None:
    if lab_unavailable():
        pytest.skip(lab_unavailable())
    script = textwrap.dedent("""
        import asyncio, os, sys
        from linklab import Lab
        async def main():
            lab = Lab()
            await lab.start()
            site = await lab.add_site("crash", "poor")
            print(site.netns, site.process.pid, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    netns, relay = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()  # type: ignore[union-attr]
    proc.send_signal(signal.SIGKILL)  # no cleanup code runs
    await proc.wait()
    for _ in range(50):  # the relay dies with its parent (PR_SET_PDEATHSIG)
        if not pid_alive(int(relay)):
            break
        await asyncio.sleep(0.1)
    assert not pid_alive(int(relay))
    assert netns in list_netns()  # left behind ...
    async with Lab():
        assert netns not in list_netns()  # ... and removed by the next lab's stale cleaner


def test_cli_profiles_and_a_refused_profile() -> None:
    out = subprocess.run([sys.executable, "-m", "linklab", "profiles"], capture_output=True, text=True, check=True)
    for name in ("clean", "province", "poor", "bursty", "edge", "outage"):
        assert f"\n{name} " in "\n" + out.stdout
    bad = subprocess.run([sys.executable, "-m", "linklab", "site", "--profile", "poor,loss_pct=200", "--", "true"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "loss_pct must be between 0 and 99, not 200" in bad.stderr


def test_cli_site_runs_a_command_inside_and_prints_counters() -> None:
    if lab_unavailable():
        pytest.skip(lab_unavailable())
    cmd = [sys.executable, "-m", "linklab", "site", "--name", "clisite", "--profile", "province", "--seed", "3",
           "--json", "--", sys.executable, "-m", "linklab", "probe", "send", "--to", "198.18.0.1:47999",
           "--count", "50", "--pps", "500"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "profile province" in done.stderr and "in netns cablab-" in done.stderr
    counters = __import__("json").loads(done.stdout[done.stdout.index("{\n"):])
    assert counters["uplink"]["in_packets"] >= 50 and set(counters) == {"uplink", "downlink"}
    assert not [n for n in list_netns() if n.endswith("-clisite")]
