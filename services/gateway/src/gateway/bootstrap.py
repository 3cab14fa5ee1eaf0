"""The only wiring of the gateway: settings -> clients -> API routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from shared.service.http import admin_app
from shared.service.runtime import ServiceRuntime


def build(runtime: ServiceRuntime) -> FastAPI:
    """The gateway's public ASGI app on a started runtime, with the admin routes beside the API."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.broker.start()
        try:
            yield
        finally:
            await runtime.broker.stop()

    app = FastAPI(title="Parley gateway", version="0.1.0", lifespan=lifespan)
    admin = admin_app(runtime)
    for route in admin.routes:
        app.router.routes.append(route)
    return app
