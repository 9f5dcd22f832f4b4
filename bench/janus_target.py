"""Janus (C, Debian's ``janus`` package) as a benchmark target: its VideoRoom plugin behind its HTTP
API, in a network namespace of its own.

Janus never gathers on loopback interfaces, so it runs inside ``cabjanus-<pid>`` with one end of a
veth pair (10.77.N.2/24; the root namespace's end is 10.77.N.1/24, where the load generator binds its
ICE sockets). Its configuration is written to a temporary folder: the VideoRoom plugin and the HTTP
transport only (folders of symlinks, so no other plugin loads), HTTP on the namespace's address, ICE
gathering enforced on the veth, no STUN, no event handlers. Everything (Janus, the namespace, the
veth, the folder) is removed by :meth:`JanusTarget.stop`, also after a failed start.

Janus is a bench-only dependency: ``apt-get install janus``. Needs root (namespaces).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from linklab import netns as ns

JANUS = "janus"
LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
HTTP_PORT = 8088
NETNS_PREFIX = "cabjanus-"


class JanusUnavailable(RuntimeError):
    """Janus cannot run here (not installed, not root); the message says what to do."""


def janus_lib_dir() -> Path:
    for candidate in (LIB, *Path("/usr/lib").glob("*/janus")):
        if (candidate / "plugins" / "libjanus_videoroom.so").exists():
            return candidate
    raise JanusUnavailable("Janus's VideoRoom plugin is not installed: apt-get install -y janus")


def check_available() -> None:
    if shutil.which(JANUS) is None:
        raise JanusUnavailable("janus is not installed; the Janus baseline needs Debian's package: "
                               "apt-get install -y janus (a bench-only dependency, not needed by the tests)")
    janus_lib_dir()
    if os.geteuid() != 0:
        raise JanusUnavailable("the Janus baseline needs root: Janus runs in a network namespace of its own")
    if shutil.which("ip") is None:
        raise JanusUnavailable("the Janus baseline needs iproute2 (ip)")


def write_config(folder: Path, address: str, interface: str) -> Path:
    lib = janus_lib_dir()
    for kind, names in (("plugins", ["libjanus_videoroom.so"]), ("transports", ["libjanus_http.so"]),
                        ("events", []), ("loggers", [])):
        (folder / kind).mkdir()
        for name in names:
            (folder / kind / name).symlink_to(lib / kind / name)
    (folder / "janus.jcfg").write_text(f"""general: {{
  configs_folder = "{folder}"
  plugins_folder = "{folder}/plugins"
  transports_folder = "{folder}/transports"
  events_folder = "{folder}/events"
  loggers_folder = "{folder}/loggers"
  debug_level = 3
  admin_secret = "{secrets.token_hex(8)}"
  server_name = "cabinet-bench"
  session_timeout = 60
}}
certificates: {{
}}
media: {{
  rtp_port_range = "20000-40000"
}}
nat: {{
  nice_debug = false
  ice_enforce_list = "{interface}"
  ignore_mdns = true
}}
plugins: {{
}}
transports: {{
}}
events: {{
  broadcast = false
}}
""")
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")
    (folder / "janus.transport.http.jcfg").write_text(f"""general: {{
  json = "compact"
  base_path = "/janus"
  http = true
  port = {HTTP_PORT}
  ip = "{address}"
  https = false
}}
admin: {{
  admin_http = false
}}
cors: {{
}}
""")
    return folder / "janus.jcfg"


class JanusTarget:
    """Janus in its namespace, with one VideoRoom created for the run (``room``)."""

    control = "janus"
    name = "janus"

    def __init__(self, publishers: int = 64) -> None:
        check_available()
        pid = os.getpid()
        subnet = 10 + pid % 240
        self.netns = f"{NETNS_PREFIX}{pid}"
        self.root_if = f"cjr{pid}"[:15]
        self.ns_if = f"cjn{pid}"[:15]
        self.root_address = f"10.77.{subnet}.1"
        self.address = f"10.77.{subnet}.2"
        self.url = f"http://{self.address}:{HTTP_PORT}/janus"
        self.publishers = publishers
        self.room = 0
        self.folder: Path | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.log_path: Path | None = None

    @property
    def loadgen_config(self) -> dict[str, Any]:
        return {"room": self.room, "ice_addresses": [self.root_address]}

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        ns.delete_netns(self.netns)  # a leftover of this pid
        await ns.ip("link", "delete", self.root_if, check=False)
        await ns.ip("netns", "add", self.netns)
        await ns.ip("link", "add", self.root_if, "type", "veth", "peer", "name", self.ns_if)
        await ns.ip("link", "set", self.ns_if, "netns", self.netns)
        await ns.ip("addr", "add", f"{self.root_address}/24", "dev", self.root_if)
        await ns.ip("link", "set", self.root_if, "up")
        for args in (("addr", "add", f"{self.address}/24", "dev", self.ns_if), ("link", "set", self.ns_if, "up"),
                     ("link", "set", "lo", "up")):
            await ns.ip("-n", self.netns, *args)
        self.folder = Path(tempfile.mkdtemp(prefix="cabinet-bench-janus-"))
        config = write_config(self.folder, self.address, self.ns_if)
        self.log_path = self.folder / "janus.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps it
        try:
            # `ip netns exec` execs Janus in place: this pid is Janus's (checked below).
            self.process = await asyncio.create_subprocess_exec(
                *ns.exec_args(self.netns, [JANUS, "-C", str(config), "-F", str(self.folder), "-o"]),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        await self._wait_ready(30)
        comm = Path(f"/proc/{self.pid}/comm").read_text().strip()
        if comm != "janus":
            raise RuntimeError(f"expected Janus at pid {self.pid}, found {comm!r}")
        self.room = await self._create_room()

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-3000:]

    async def _wait_ready(self, timeout: float) -> None:
        import aiohttp

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise RuntimeError(f"janus exited ({self.process.returncode}):\n{self._log_tail()}")
                try:
                    async with http.get(self.url + "/info", timeout=aiohttp.ClientTimeout(total=2)) as response:
                        info = await response.json(content_type=None)
                        if "janus.plugin.videoroom" in info.get("plugins", {}):
                            return
                        raise RuntimeError(f"janus runs without the VideoRoom plugin:\n{self._log_tail()}")
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"janus did not answer on {self.url} within {timeout} s:\n{self._log_tail()}")
                await asyncio.sleep(0.2)

    async def _create_room(self) -> int:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
                body = {**body, "transaction": secrets.token_hex(6)}
                async with http.post(self.url + path, json=body, timeout=aiohttp.ClientTimeout(total=10)) as r:
                    data: dict[str, Any] = await r.json(content_type=None)
                if data.get("janus") != "success":
                    raise RuntimeError(f"janus {body}: {data}")
                return data

            session = (await post("", {"janus": "create"}))["data"]["id"]
            handle = (await post(f"/{session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}))["data"]["id"]
            reply = await post(f"/{session}/{handle}", {"janus": "message", "body": {
                "request": "create", "description": "cabinet bench", "publishers": self.publishers,
                "bitrate": 0, "fir_freq": 0, "audiocodec": "opus", "videocodec": "vp8",
                "audiolevel_ext": True, "notify_joining": False, "is_private": False}})
            data = reply["plugindata"]["data"]
            if data.get("videoroom") != "created":
                raise RuntimeError(f"janus: room not created: {data}")
            await post(f"/{session}", {"janus": "destroy"})
            return int(data["room"])

    async def stats(self) -> dict[str, Any]:
        return {}  # no counters: forwarded packets are counted at the subscribers

    def tokens(self, count: int) -> list[str | None]:
        return [None] * count

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.terminate()
                await asyncio.wait_for(self.process.wait(), 10)
            except (TimeoutError, ProcessLookupError):
                try:
                    self.process.kill()
                except ProcessLookupError:
                    pass
                await self.process.wait()
        keep = os.environ.get("CABINET_BENCH_LOGS")
        if keep and self.log_path is not None and self.log_path.exists():
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log_path, Path(keep) / "janus.log")
        ns.delete_netns(self.netns)
        await ns.ip("link", "delete", self.root_if, check=False)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
