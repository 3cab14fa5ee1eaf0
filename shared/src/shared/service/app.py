"""The ASGI application of a service without a public API: the admin routes, the AsyncAPI page
(``shared.service.docs``) and the start and stop of its bus consumers.

A plain Starlette app: the services' messaging is ``shared.bus`` on redis-py, so a FastStream
broker here would hold an idle Redis connection and serve nothing (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from shared.service.docs import docs_app
from shared.service.http import admin_app
from shared.service.runtime import ServiceRuntime

Hook = Callable[[], Awaitable[None]]


def service_app(
    runtime: ServiceRuntime,
    *,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
) -> Starlette:
    """An app that answers health, metrics and docs requests around the service's own work.

    ``on_startup`` hooks run in order before the first request is served (start bus consumers
    there); ``on_shutdown`` hooks run in order on the way down (stop consumers, so in-flight work
    finishes and is acked).
    """

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for start in on_startup:
            await start()
        try:
            yield
        finally:
            for stop in on_shutdown:
                await stop()

    routes = [*admin_app(runtime).routes, *docs_app(runtime.name).routes]
    return Starlette(routes=routes, lifespan=lifespan)
