"""The entry point of every service: ``parley-<name> [serve|migrate|check-config]``.

Bad configuration, an unreachable Redis, an unusable database or a port in use end the process with
one clear line on stderr and exit code 2, not a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

import uvicorn

from shared import tracing
from shared.bus.context import MessageContextFilter
from shared.service.errors import ConfigError, ServiceError, StartupError
from shared.service.http import admin_app
from shared.service.logging import configure_logging
from shared.service.runtime import ServiceRuntime
from shared.service.settings import ServiceSettings, load_settings

log = logging.getLogger(__name__)

AppFactory = Callable[[ServiceRuntime], Any]
USAGE = "usage: parley-{name} [serve|migrate|check-config]"


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket before anything starts, so a taken port fails at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {e.strerror}") from e
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


Preflight = Callable[[ServiceRuntime], Awaitable[None]]


async def _serve(
    runtime: ServiceRuntime, build: AppFactory, preflight: Preflight | None = None
) -> None:
    settings = runtime.settings
    sock = bind_socket(settings.host, settings.port)
    admin_sock = None
    if settings.admin_port is not None:
        try:
            admin_sock = bind_socket(settings.admin_host or settings.host, settings.admin_port)
        except StartupError:
            sock.close()
            raise
    await runtime.start()
    admin_task: asyncio.Task[None] | None = None
    admin: _AdminServer | None = None
    try:
        if preflight is not None:
            await preflight(runtime)
        app = build(runtime)
        freeze_startup_objects()
        server = DrainingServer(uvicorn_config(app, settings))
        if admin_sock is not None:
            admin = _AdminServer(admin_config(runtime))
            admin_task = asyncio.create_task(admin.serve(sockets=[admin_sock]))
            log.info("%s admin on http://%s:%d", runtime.name, *admin_sock.getsockname()[:2])
        log.info("%s ready on http://%s:%d", runtime.name, settings.host, settings.port)
        await server.serve(sockets=[sock])
    finally:
        if admin is not None and admin_task is not None:
            admin.should_exit = True
            await admin_task
        await runtime.stop()
        sock.close()
        if admin_sock is not None:
            admin_sock.close()


class _AdminServer(uvicorn.Server):
    """The admin listener: it leaves the signals to the public server, which stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def admin_config(runtime: ServiceRuntime) -> uvicorn.Config:
    """The admin listener's server: health and metrics only, no lifespan of its own."""
    return uvicorn.Config(
        admin_app(runtime),
        log_config=None,
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        timeout_keep_alive=runtime.settings.http_keep_alive,
        timeout_graceful_shutdown=5,
    )


BeforeShutdown = Callable[[], Awaitable[None]]
"""A hook an app leaves in ``app.state.before_shutdown``: run on SIGTERM before uvicorn closes
the connections itself."""


class DrainingServer(uvicorn.Server):
    """uvicorn's server, but on shutdown it stops accepting, then runs the app's
    ``app.state.before_shutdown`` hook (bounded by ``drain_timeout``), then shuts down as uvicorn
    does. uvicorn's own shutdown closes every WebSocket with 1012 (service restart) before the
    app's lifespan ends; the hook lets an app close them first with the code it documents."""

    drain_timeout = 5.0

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connection while the app drains (uvicorn closes it again)
        state = getattr(self.config.app, "state", None)
        hook: BeforeShutdown | None = getattr(state, "before_shutdown", None)
        if hook is not None:
            try:
                await asyncio.wait_for(hook(), self.drain_timeout)
            except Exception as e:  # a failed drain must not stop the shutdown
                log.warning("draining before shutdown failed: %r", e)
        await super().shutdown(sockets)


def uvicorn_config(app: Any, settings: ServiceSettings) -> uvicorn.Config:
    """How a service's HTTP (and WebSocket) server runs."""
    return uvicorn.Config(
        app,
        log_config=None,
        lifespan="on",
        access_log=False,
        timeout_keep_alive=settings.http_keep_alive,
        timeout_graceful_shutdown=10,
        ws_per_message_deflate=settings.ws_compression,
        ws_max_size=settings.ws_max_size,
        # uvicorn would otherwise replace the peer with the X-Forwarded-For of any request from
        # 127.0.0.1 (its forwarded_allow_ips default), a local spoof the service never agreed to.
        # Which proxies to believe is each service's setting (the gateway's TRUSTED_PROXIES).
        proxy_headers=False,
    )


def freeze_startup_objects() -> int:
    """Move every object alive now (modules, the app, its routes and schemas) out of the
    collector's reach; returns how many were frozen.

    They live as long as the process, yet every full collection would walk them all: with the
    gateway's libraries loaded that is some 170,000 objects and a pause of tens of milliseconds
    on a request path. Frozen, a full collection walks only what requests create.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def _migrate(runtime: ServiceRuntime) -> None:
    if runtime.database is None or runtime.migrations is None:
        log.info("%s owns no database: nothing to migrate", runtime.name)
        return
    try:
        await runtime.database.migrate(runtime.migrations)
        log.info(
            "%s database at revision %s", runtime.name, await runtime.database.current_revision()
        )
    finally:
        await runtime.database.close()


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def run_service(
    name: str,
    settings_cls: type[ServiceSettings],
    build: AppFactory,
    *,
    migrations: Path | None = None,
    argv: list[str] | None = None,
    preflight: Preflight | None = None,
) -> int:
    """Run the command in ``argv`` for service ``name``; returns the process exit code.

    ``preflight`` runs once connected, before the app is built: a StartupError it raises ends
    the process with one line naming the cause.
    """
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "serve"
    configure_logging(name, filters=[MessageContextFilter()])
    if command not in {"serve", "migrate", "check-config"}:
        print(USAGE.format(name=name), file=sys.stderr)
        return 2
    try:
        settings = load_settings(settings_cls)
        if command == "check-config":
            print(f"parley-{name}: configuration ok")
            return 0
        if command == "serve":
            try:
                if tracing.configure(name):
                    log.info("%s exports traces (OTEL_* variables)", name)
            except tracing.TracingConfigError as e:
                raise ConfigError(str(e)) from e
        runtime = ServiceRuntime(
            name, settings, migrations=migrations, owns_database=migrations is not None
        )
        if command == "migrate":
            asyncio.run(_migrate(runtime))
            return 0
        try:
            _run_loop(_serve(runtime, build, preflight))
        finally:
            tracing.shutdown()
    except ServiceError as e:
        kind = "configuration error" if type(e).__name__ == "ConfigError" else "cannot start"
        print(f"parley-{name}: {kind}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
