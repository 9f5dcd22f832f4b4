"""Assembles the process: services, web app (and later signaling and SFU), and runs it."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from pathlib import Path

from aiohttp import web

from cabinet.bootstrap import Runtime
from cabinet.recordings import recover_recordings, run_retention
from cabinet.storage import replay_attendance_journal, watch_storage
from cabinet.tls import self_signed, ssl_context
from meetings import demo
from meetings.services import Services
from provincial_nodes import uplink
from provincial_nodes.centre_pipes import CENTRE_PIPES, CentrePipes
from signaling.alarms import StorageAlarms
from signaling.server import Signaling
from web.app import AccessLogger, create_app

log = logging.getLogger("cabinet")


def build_app(runtime: Runtime, services: Services) -> web.Application:
    config = runtime.config
    archive = config.archive_path if config.recordings.enabled else None
    app = create_app(services, config.web, runtime.secret_key, tls=config.web.tls, archive_root=archive,
                     node_upload_max_bytes=config.recordings.node_upload_max_mb * 2**20)
    signaling = Signaling(services, config.signaling, config.media, archive_root=archive)
    signaling.attach(app)
    StorageAlarms(services, lambda: list(signaling.rooms.rooms.values()))  # the console's storage alarm
    if config.provincial_nodes.upstream_url:
        uplink.install(app, services, config.provincial_nodes, signaling.rooms, archive_root=archive,
                       data_dir=config.data_path)
    else:  # the centre: a pipe for each node that connects
        pipes = app[CENTRE_PIPES] = CentrePipes(services, signaling.rooms, bind_host=config.web.host)

        async def stop_pipes(_app: web.Application) -> None:
            await pipes.stop()

        app.on_shutdown.append(stop_pipes)

    async def recover_attendance(_app: web.Application) -> None:
        # Before any connection is accepted: attendance a full disk held back comes from the journal, then
        # intervals a crash left open end at their last heartbeat.
        await replay_attendance_journal(services)
        closed = await services.attendance.recover_crashed()
        if closed:
            log.warning("closed %d attendance intervals left open by a crash", closed,
                        extra={"event": "attendance.recovered", "intervals": closed})

    app.on_startup.append(recover_attendance)

    retention: list[asyncio.Task[None]] = []

    async def finalise_recordings(_app: web.Application) -> None:
        # Before any session records again: files a crash left are repaired and sealed; then the
        # retention task deletes what has outlived its retention period.
        if archive is not None:
            await recover_recordings(services, archive)
            retention.append(asyncio.ensure_future(run_retention(services, archive)))

    async def stop_retention(_app: web.Application) -> None:
        for task in retention:
            task.cancel()

    app.on_startup.append(finalise_recordings)
    app.on_cleanup.append(stop_retention)
    watch_storage(app, services)

    async def start_refusal_log(_app: web.Application) -> None:
        services.refusals.start()

    async def stop_refusal_log(_app: web.Application) -> None:
        await services.refusals.stop()  # writes what is still counted, before the database closes

    app.on_startup.append(start_refusal_log)
    app.on_cleanup.append(stop_refusal_log)

    async def close_db(_app: web.Application) -> None:
        await services.db.dispose()

    app.on_cleanup.append(close_db)
    return app


def tls_context(runtime: Runtime) -> ssl.SSLContext | None:
    web_config = runtime.config.web
    if web_config.tls_cert:
        return ssl_context(Path(web_config.tls_cert), Path(web_config.tls_key))
    if web_config.self_signed:
        cert, key = self_signed(runtime.data_dir, web_config.self_signed_names)
        log.info("using a self-signed certificate", extra={"event": "tls.self_signed", "certificate": str(cert)})
        return ssl_context(cert, key)
    return None


async def load_demo_if_empty(services: Services) -> None:
    if await demo.is_empty(services):
        accounts = await demo.load(services)
        log.warning(
            "loaded demo data: accounts %s share the demo password given in README.md "
            "(demo only: change or disable these accounts before real use)",
            ", ".join(a.username for a in accounts),
            extra={"event": "demo.loaded"},
        )


async def serve(runtime: Runtime, *, ready: asyncio.Event | None = None) -> None:
    services = runtime.services()
    if runtime.config.server.demo_if_empty and not runtime.config.provincial_nodes.upstream_url:
        await load_demo_if_empty(services)  # a node's accounts come from the centre, under the centre's ids
    app = build_app(runtime, services)
    context = tls_context(runtime)
    # Signaling closes its sockets at stop (signaling/server.py Signaling.stop); what is still running
    # after this is cut off, so a planned stop stays within a few seconds.
    runner = web.AppRunner(app, access_log_class=AccessLogger, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, runtime.config.web.host, runtime.config.web.port, ssl_context=context)
    await site.start()
    scheme = "https" if context else "http"
    log.info("cabinet is serving on %s://%s:%s/", scheme, runtime.config.web.host, runtime.config.web.port,
             extra={"event": "server.started", "data_dir": str(runtime.data_dir)})
    print(f"Cabinet is running at {scheme}://{runtime.config.web.host}:{runtime.config.web.port}/ "
          "(Ctrl+C to stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Start-up objects (modules, the app, the demo data) will live as long as the process: move them out of
    # the collector's reach, so a full collection does not hold the loop ~100 ms (tests/test_loop_budget.py).
    gc.collect()
    gc.freeze()
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("shutting down", extra={"event": "server.stopping"})
        await runner.cleanup()
