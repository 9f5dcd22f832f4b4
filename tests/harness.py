"""Test harness: a real Cabinet server on loopback (in a thread), and a cookie-keeping HTTP client."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from cabinet.bootstrap import Runtime, prepare
from cabinet.config import Config, load_config
from cabinet.server import build_app, load_demo_if_empty, tls_context
from meetings.demo import DEMO_PASSWORD
from meetings.services import Services
from web.app import AccessLogger

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
T = TypeVar("T")
STRONG_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG"


def make_config(data_dir: Path, **overrides: Any) -> Config:
    """A configuration for tests: loopback, a temp data dir, no environment influence."""
    values: dict[str, Any] = {"server.data_dir": str(data_dir), "web.host": "127.0.0.1", "web.port": 0,
                              "meetings.secret_key": STRONG_SECRET}
    values.update(overrides)
    return load_config(None, env={}, cli_overrides=values)


class LiveServer:
    """Runs the real application (with demo data) on 127.0.0.1 (or ``host``) in a background thread with its own loop."""

    def __init__(self, config: Config, *, demo: bool = True, host: str = "127.0.0.1") -> None:
        self.config = config
        self.demo = demo
        self.host = host
        self.runtime: Runtime | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        #: The running server's own Services (use ``in_server`` to run something with them).
        self.served: Services | None = None
        #: The running application (read its state from the test's thread only for counters).
        self.app: web.Application | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.config.web.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> LiveServer:
        self.runtime = prepare(self.config)
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(180):
            raise RuntimeError("server did not start within 180 s")
        if self._error:
            raise self._error
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        assert self.runtime is not None
        services = self.runtime.services()
        if self.demo:
            await load_demo_if_empty(services)
        self.served = services
        app = self.app = build_app(self.runtime, services)
        runner = web.AppRunner(app, access_log_class=AccessLogger, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0, ssl_context=tls_context(self.runtime))
        await site.start()
        self.port = runner.addresses[0][1]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def stop(self) -> None:
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)

    async def in_server(self, work: Callable[[Services], Awaitable[T]]) -> T:
        """Run ``work`` with the server's own Services on the server's loop (e.g. flush its refusal counts)."""
        assert self._loop is not None and self.served is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work(self.served), self._loop))

    def services(self) -> Services:
        """A separate Services instance on the same database, for the test's own event loop."""
        assert self.runtime is not None
        return self.runtime.services()

    async def join_token(self, username: str, kind: str = "cabinet_session") -> str:
        """Mint a join token as ``username`` would through the API, for their first meeting of ``kind``."""
        from meetings.policy import Caller
        from meetings.services.common import principal_of

        services = self.services()
        try:
            person = await services.people.find(Caller.cli(), username)
            caller = Caller(principal_of(person), "127.0.0.1")
            meeting = next(m for m in await services.meetings.list_visible(caller) if m.kind.value == kind)
            token, _ = await services.meetings.mint_join_token(caller, meeting.id)
            return token
        finally:
            await services.db.dispose()


class Client:
    """An HTTP client that behaves like a browser: keeps cookies, reads CSRF tokens from pages."""

    def __init__(self, base_url: str, *, ssl: bool | None = None) -> None:
        self.base_url = base_url
        self.jar = aiohttp.CookieJar(unsafe=True)
        connector = aiohttp.TCPConnector(ssl=False) if base_url.startswith("https") else None
        self.http = aiohttp.ClientSession(base_url, cookie_jar=self.jar, connector=connector)
        self.csrf: str | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()

    def cookie(self, name: str) -> str | None:
        for morsel in self.jar:
            if morsel.key == name:
                return morsel.value
        return None

    async def page(self, path: str) -> tuple[int, str]:
        async with self.http.get(path, allow_redirects=False) as response:
            body = await response.text()
            match = CSRF_RE.search(body)
            if match:
                self.csrf = match.group(1)
            return response.status, body

    async def login(self, username: str, password: str = DEMO_PASSWORD, next_url: str = "/") -> aiohttp.ClientResponse:
        status, _ = await self.page("/login")
        assert status in (200, 303), status
        async with self.http.post("/login", data={"csrf_token": self.csrf or "", "username": username,
                                                  "password": password, "next": next_url},
                                  allow_redirects=False) as response:
            await response.read()
        if response.status == 303:
            await self.page("/")  # pick up the session-bound CSRF token
        return response

    async def form(self, path: str, data: Mapping[str, Any], *, csrf: str | None = None) -> aiohttp.ClientResponse:
        payload = {"csrf_token": self.csrf if csrf is None else csrf, **data}
        async with self.http.post(path, data=payload, allow_redirects=False) as response:
            await response.read()
        return response

    async def api(self, method: str, path: str, json: Any = None, *, csrf: str | None = None,
                  headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        token = self.csrf if csrf is None else csrf
        if method not in ("GET", "HEAD") and token:
            hdrs.setdefault("X-CSRF-Token", token)
        async with self.http.request(method, path, json=json, headers=hdrs, allow_redirects=False) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            return response.status, body
