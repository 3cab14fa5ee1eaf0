"""The ASGI application of a service without a public API: FastStream, the admin routes and the
AsyncAPI page (``shared.service.docs``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from faststream.asgi import AsgiFastStream

from shared.service.docs import DOCS_PATHS, docs_app
from shared.service.http import ADMIN_PATHS, admin_app
from shared.service.runtime import ServiceRuntime

Hook = Callable[[], Awaitable[None]]


def service_app(
    runtime: ServiceRuntime,
    *,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
) -> AsgiFastStream:
    """A FastStream app on the runtime's broker that also answers health and metrics requests.

    ``on_startup`` hooks run once the broker is up (start bus consumers there); ``on_shutdown``
    hooks run first on the way down (stop consumers, so in-flight work finishes and is acked).
    """
    admin = admin_app(runtime)
    docs = docs_app(runtime.name)
    return AsgiFastStream(
        runtime.broker,
        asgi_routes=[
            *((path, admin) for path in ADMIN_PATHS),
            *((path, docs) for path in DOCS_PATHS),
        ],
        asyncapi_path=None,  # FastStream's page: see shared.service.docs for why not
        after_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
    )
