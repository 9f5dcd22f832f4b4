"""A provincial node in a link-lab site beside the centre (issue 14): the centre in this process on the
lab's server address, the node a real process inside the site's namespace, so everything between
them crosses the site's emulated WAN (and its counters); the node's own people are bots inside the
site, on the node's LAN."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_process import BotProcess
from bots.bot import Bot, BotOptions
from bots.login import LoginTokenSource
from bots.media_files import MediaParams, PreEncodedMedia, load_media
from harness import LiveServer, make_config
from meetings.demo import DEMO_PASSWORD
from server_process import ROOT, ServerProcess
from test_node_process import CLI, register_node

from linklab import Lab, Site
from provincial_nodes.centre_pipes import CENTRE_PIPES, CentrePipes
from signaling.participant import Participant

SESSION = 1  # the demo's weekly session: KH-17, the governor's province, is invited
#: The governor's office's other accounts (made at the centre; the node copies them).
AIDES = tuple(f"kh17-aide-{n}" for n in range(1, 8))
#: Secretariat staff watching at the centre (the host office's, invited with it).
CENTRE_VIEWERS = tuple(f"ocm-viewer-{n}" for n in range(1, 5))
#: The host office's delegates who all talk at once at the centre.
CENTRE_SPEAKERS = tuple(f"ocm-speaker-{n}" for n in range(1, 11))


@dataclass
class NodeSite:
    lab: Lab
    site: Site
    centre: LiveServer
    node: ServerProcess
    work_dir: Path
    media: PreEncodedMedia
    bots: list[SiteBot] = field(default_factory=list)

    @property
    def pipes(self) -> CentrePipes:
        assert self.centre.app is not None
        return self.centre.app[CENTRE_PIPES]

    async def wan_bytes(self) -> tuple[int, int]:
        """Bytes delivered across the WAN so far: (centre -> node, node -> centre)."""
        counters = await self.site.counters()
        return counters["downlink"]["delivered_bytes"], counters["uplink"]["delivered_bytes"]

    def node_cpu_seconds(self) -> float:
        """The node process's CPU time so far (user + system)."""
        assert self.node.proc is not None
        fields = Path(f"/proc/{self.node.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start_bot(self, username: str, *, publish: bool, seconds: float, name: str | None = None) -> SiteBot:
        """A bot of the node's office on the node's LAN (inside the site), logged in on the node."""
        name = name or username
        args = [sys.executable, "-m", "bots", "--url", self.node.url, "--username", username, "--password-stdin",
                "--meeting", str(SESSION), "--bind", self.site.address, "--seconds", str(seconds), "--json",
                "--name", name, "--videos", "2", "--audios", "0", "--cache-dir", str(self.work_dir / "media"),
                "--progress", str(self.work_dir / f"bot-{name}.progress")]
        args += ["--publish", "--no-reconnect"] if publish else ["--subscribe", "--lean"]
        log_path = self.work_dir / f"bot-{name}.log"
        with open(log_path, "wb") as log, open(self.work_dir / f"bot-{name}.json", "wb") as out:
            proc = subprocess.Popen(self.site.exec_args(args), cwd=ROOT, stdin=subprocess.PIPE, stdout=out,
                                    stderr=log)
        assert proc.stdin is not None
        proc.stdin.write(f"{DEMO_PASSWORD}\n".encode())
        proc.stdin.close()
        bot = SiteBot(name, proc, self.work_dir)
        self.bots.append(bot)
        return bot


class SiteBot(BotProcess):
    """A bot of the node's LAN; its JSON report once it has run its time."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], work_dir: Path) -> None:
        super().__init__(name, proc, work_dir / f"bot-{name}.log")
        self.work_dir = work_dir

    def frame_rate(self, participant_id: str, kind: str, since: float, until: float) -> float | None:
        """Frames per second of ``participant_id``'s ``kind`` received between two ``time.time()`` instants
        (from the bot's progress lines, one a second); None when the lines do not span the window."""
        path = self.work_dir / f"bot-{self.name}.progress"
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

        def frames(line: dict[str, Any]) -> int:
            return sum(s["frames_received"] for s in line["streams"]
                       if s["participant_id"] == participant_id and s["kind"] == kind)

        first = [line for line in lines if line["at"] <= since]
        last = [line for line in lines if line["at"] <= until]
        if not first or last[-1]["at"] - first[-1]["at"] < 0.7 * (until - since):
            return None
        return (frames(last[-1]) - frames(first[-1])) / (last[-1]["at"] - first[-1]["at"])

    async def report(self, timeout: float = 90) -> dict[str, Any]:
        code = await asyncio.to_thread(self.proc.wait, timeout)
        text = (self.work_dir / f"bot-{self.name}.json").read_text()
        if code != 0 or not text.strip():
            raise AssertionError(f"bot {self.name} exited {code}: {self.log_tail()}")
        return json.loads(text)  # type: ignore[no-any-return]


# -- at the centre ------------------------------------------------------------------------------------------

async def centre_bot(site: NodeSite, username: str, *, publish: bool, video: bool = True) -> Bot:
    """A lean bot at the centre (this process, the lab's server address): publishing (``video``: a camera
    beside its voice), or watching."""
    url = site.centre.url
    bot = Bot(BotOptions(url=url, token_source=LoginTokenSource(url, username, DEMO_PASSWORD, SESSION), name=username,
                         publish=publish, subscribe=not publish, lean=True, videos=2, audios=0, timeout=30,
                         video=video, bind_addresses=[site.lab.server_address]), site.media)
    try:
        await asyncio.wait_for(bot.start(), 40)
    except BaseException:
        await bot.stop()
        raise
    return bot


def centre_participant(site: NodeSite, username: str) -> Participant | None:
    """``username``'s participant in the centre's room of the session (the node's people too)."""
    room = site.pipes.rooms.rooms.get(SESSION)
    return next((p for p in room.participants.values() if p.grant.principal.username == username), None) if room else None


def frames_from(bot: Bot, participant_id: str) -> int:
    """Video frames ``bot`` received of ``participant_id`` so far."""
    return sum(s.frames_received for s in bot.report().streams if s.participant_id == participant_id
               and s.kind == "video")


async def until(predicate: Callable[[], object], timeout: float) -> float | None:
    """Seconds until ``predicate()`` holds; None after ``timeout``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout:
            return None
        await asyncio.sleep(0.05)
    return loop.time() - start


async def wan_per_source_byte(site: NodeSite, participant_id: str, seconds: float = 5.0) -> tuple[float, float]:
    """Over ``seconds``: the bytes that crossed the WAN (centre -> node, node -> centre) per byte
    ``participant_id``'s producers received at the centre (its own, or the mirrors of the node's): about
    one when one copy crosses, whatever the source's own rate does."""
    room = site.pipes.rooms.rooms[SESSION]

    def source_bytes() -> int:
        return sum(p.stats.bytes for p in room.router.producers.values() if p.participant_id == participant_id)

    down, up = await site.wan_bytes()
    source = source_bytes()
    await asyncio.sleep(seconds)
    down2, up2 = await site.wan_bytes()
    sent = max(1, source_bytes() - source)
    return (down2 - down) / sent, (up2 - up) / sent


def stream_of(report: dict[str, Any], participant_id: str, kind: str) -> dict[str, Any] | None:
    return next((s for s in report["streams"] if s["participant_id"] == participant_id and s["kind"] == kind), None)


async def _add_aides(centre: LiveServer) -> None:
    services = centre.services()
    try:
        office = next(o for o in await services.offices.list(CLI) if o.code == "KH-17")
        host = next(o for o in await services.offices.list(CLI) if o.code == "OCM")
        for username in AIDES:
            await services.people.create(CLI, username=username, full_name=f"Aide {username[-1]}",
                                         office_id=office.id, roles=["delegate"], password=DEMO_PASSWORD)
        for username in CENTRE_VIEWERS:
            await services.people.create(CLI, username=username, full_name=f"Viewer {username[-1]}",
                                         office_id=host.id, roles=["observer"], password=DEMO_PASSWORD)
        for username in CENTRE_SPEAKERS:
            await services.people.create(CLI, username=username, full_name=f"Speaker {username.rsplit('-', 1)[1]}",
                                         office_id=host.id, roles=["delegate"], password=DEMO_PASSWORD)
    finally:
        await services.db.dispose()


@asynccontextmanager
async def node_in_a_site(work_dir: Path, profile: str = "clean", *, grace_seconds: float | None = None,
                         node_env: dict[str, str] | None = None) -> AsyncIterator[NodeSite]:
    media = await asyncio.to_thread(load_media, MediaParams(), work_dir / "media")  # once, for every bot
    async with Lab() as lab:
        site = await lab.add_site("kh17", profile=profile, seed=17)
        config = make_config(work_dir / "centre", **{"media.ice_bind_addresses": [lab.server_address],
                                                     "web.host": lab.server_address})
        centre = await asyncio.to_thread(LiveServer(config, host=lab.server_address).start)
        node: ServerProcess | None = None
        node_site: NodeSite | None = None
        try:
            if grace_seconds is not None:
                assert centre.app is not None
                centre.app[CENTRE_PIPES].grace_seconds = grace_seconds
            await _add_aides(centre)
            credential_file = work_dir / "node.credential"
            await register_node(centre, "KH-17", credential_file)
            node = ServerProcess(work_dir / "node", host=site.address, wrap=site.exec_args([]), env={
                "CABINET_PROVINCIAL_NODES__UPSTREAM_URL": centre.url,
                "CABINET_PROVINCIAL_NODES__CREDENTIAL_FILE": str(credential_file),
                "CABINET_PROVINCIAL_NODES__OFFICE_CODE": "KH-17", **(node_env or {})})
            await asyncio.to_thread(node.start, 60)
            node_site = NodeSite(lab, site, centre, node, work_dir, media)
            await _until_replicated(node_site)
            yield node_site
        finally:
            for bot in node_site.bots if node_site else []:
                bot.stop()
            if node is not None:
                node.stop()
            await asyncio.to_thread(centre.stop)


async def _until_replicated(node_site: NodeSite) -> None:
    from test_node_process import signs_in

    for _ in range(200):  # the first snapshot (the office's accounts) arrives within a second or two
        if await signs_in(node_site.node.url, AIDES[-1]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the node never had the office's accounts: {node_site.node.log_tail()}")
