"""Cabinet as a benchmark target: the SFU-only process (bench/sfu_server.py, media.Router or the
MediaRelay baseline behind an HTTP control channel) and the real server (``cabinet serve``)."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.procs import PYTHON, ROOT, Proc, free_port

class BenchSfu:
    control = "http"

    def __init__(self, impl: str, *extra: str) -> None:
        self.impl = impl
        self.extra = extra
        self.proc: Proc | None = None
        self.url = ""

    async def start(self) -> None:
        self.proc = await Proc.start(f"sfu-{self.impl}", PYTHON, str(ROOT / "bench" / "sfu_server.py"),
                                     "--impl", self.impl, *self.extra)
        line = await self.proc.line(60)
        if not line.startswith("READY "):
            raise RuntimeError(f"SFU did not start: {line!r}")
        self.url = f"http://127.0.0.1:{line.split()[1]}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.proc.pid

    async def stats(self) -> dict[str, Any]:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.get(self.url + "/stats", timeout=aiohttp.ClientTimeout(total=30)) as response:
                return await response.json()  # type: ignore[no-any-return]

    def tokens(self, count: int) -> list[str | None]:
        return [None] * count

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()


class CabinetServer:
    """The real server (``cabinet serve``) with demo data in a temporary data directory."""

    control = "sio"

    def __init__(self, workdir: Path, loop_probe: Path | None = None) -> None:
        self.workdir = workdir
        self.loop_probe = loop_probe
        self.proc: Proc | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = workdir / "cabinet.toml"
        # No site budgets: the benchmark measures forwarding; its load generator's subscribers (one process)
        # lose packets to their own CPU, which a budget would answer by sending less.
        self.config_file.write_text(
            "[media]\nice_bind_addresses = [\"127.0.0.1\"]\nbudget_enabled = false\n"
            "[signaling]\nmax_message_bytes = 1048576\nrate_per_second = 50.0\nrate_burst = 200\n"
            "[server]\nlog_level = \"INFO\"\n"
            # The late joiner's token is used minutes after it was minted (the 50-site joins take that long).
            "[meetings]\njoin_token_seconds = 3600\n"
        )
        self.log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed in stop()

    async def start(self) -> None:
        launcher = (["-c", "import sys; from cabinet.cli import main; sys.exit(main())"] if self.loop_probe is None
                    else [str(ROOT / "bench" / "server_probe.py"), str(self.loop_probe)])
        self.proc = await Proc.start(
            "cabinet", PYTHON, *launcher,
            "serve", "--config", str(self.config_file), "--data-dir", str(self.workdir / "data"),
            "--host", "127.0.0.1", "--port", str(self.port), "--demo-if-empty", stderr=self.log,
            # The server reads CABINET_* as configuration: the bench's own variables are not for it.
            env={k: v for k, v in os.environ.items() if not k.startswith("CABINET_BENCH_")},
        )
        deadline = time.monotonic() + 120
        try:
            while True:
                line = await self.proc.line(max(0.1, deadline - time.monotonic()))
                if "is running at" in line:
                    break
        except RuntimeError:
            self.log.flush()
            sys.stderr.write((self.workdir / "server.log").read_text(errors="replace")[-4000:])
            raise

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.proc.pid

    async def stats(self) -> dict[str, Any]:
        return {}

    async def mint_tokens(self, count: int) -> list[str]:
        """Join tokens for the demo cabinet session: site 0 is the chair, the others delegates."""
        from cabinet.bootstrap import prepare
        from cabinet.config import load_config
        from meetings.policy import Caller

        config = load_config(str(self.config_file), env={},
                             cli_overrides={"server.data_dir": str(self.workdir / "data")})
        runtime = prepare(config, migrate=False)
        services = runtime.services()
        cli = Caller.cli()
        try:
            chair = await services.people.find(cli, "chair")
            meeting = next(m for m in await services.meetings.list_visible(cli) if m.kind.value == "cabinet_session")
            offices = [o for o in await services.offices.list(cli) if o.kind.value in ("province", "capital", "ministry")]
            # One account per site, as in a real session (the server keeps one connection per person).
            people = [chair]
            for i in range(1, count):
                people.append(await services.people.create(
                    cli, username=f"bench.site{i:02d}", full_name=f"Bench site {i}",
                    office_id=offices[i % len(offices)].id, roles=["delegate"], password=secrets.token_urlsafe(18)))
            await services.meetings.invite(cli, meeting.id, person_ids=[p.id for p in people[1:]])
            tokens = []
            for person in people:
                token, _ = services.meetings.signer.mint(meeting_id=meeting.id, person_id=person.id,
                                                         office_id=person.office_id,
                                                         roles=tuple(r.value for r in person.roles))
                tokens.append(token)
            return tokens
        finally:
            await services.db.dispose()

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()
        self.log.close()
        keep = os.environ.get("CABINET_BENCH_LOGS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.workdir / "server.log", Path(keep) / "server.log")
