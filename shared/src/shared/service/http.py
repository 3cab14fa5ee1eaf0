"""The admin HTTP side every service serves: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from shared.service.runtime import ServiceRuntime

ADMIN_PATHS = ("/health/live", "/health/ready", "/metrics")


def admin_app(runtime: ServiceRuntime) -> Starlette:
    """``/health/live`` (process up), ``/health/ready`` (dependencies up), ``/metrics``."""

    return Starlette(routes=admin_routes(runtime))


def admin_routes(runtime: ServiceRuntime) -> list[Route]:
    """The routes of :func:`admin_app`."""

    async def live(_: Request) -> Response:
        return JSONResponse({"status": "ok", "service": runtime.name})

    async def ready(_: Request) -> Response:
        checks = await runtime.readiness()
        ok = all(c.ok for c in checks)
        body = {
            "status": "ok" if ok else "unavailable",
            "service": runtime.name,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/health/live", live),
        Route("/health/ready", ready),
        Route("/metrics", metrics),
    ]


def public_health_routes(runtime: ServiceRuntime) -> list[Route]:
    """``/health/live`` and a bare ``/health/ready`` (status and service only: which dependency is
    down, and why, is for the admin port) for a service whose port is public (load balancers)."""

    async def live(_: Request) -> Response:
        return JSONResponse({"status": "ok", "service": runtime.name})

    async def ready(_: Request) -> Response:
        ok = all(c.ok for c in await runtime.readiness())
        body = {"status": "ok" if ok else "unavailable", "service": runtime.name}
        return JSONResponse(body, status_code=200 if ok else 503)

    return [Route("/health/live", live), Route("/health/ready", ready)]
