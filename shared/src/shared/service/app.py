"""The ASGI application of a service without a public API: FastStream plus the admin routes."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from shared.service.http import ADMIN_PATHS, admin_app
from shared.service.runtime import ServiceRuntime


def service_app(runtime: ServiceRuntime) -> AsgiFastStream:
    """A FastStream app on the runtime's broker that also answers health and metrics requests."""
    admin = admin_app(runtime)
    return AsgiFastStream(
        runtime.broker,
        asgi_routes=[(path, admin) for path in ADMIN_PATHS],
        asyncapi_path="/docs/asyncapi",
    )
