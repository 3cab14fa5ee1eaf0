"""The public health routes say whether a service is ready, and nothing about why not."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from shared.service.http import admin_app, public_health_routes
from shared.service.runtime import ServiceRuntime
from shared.service.settings import ServiceSettings

pytestmark = pytest.mark.unit


async def get(app: Starlette, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.get(path)


async def test_a_not_ready_service_answers_503_publicly_without_details() -> None:
    runtime = ServiceRuntime("gw", ServiceSettings(), owns_database=False)  # never started
    public = Starlette(routes=public_health_routes(runtime))
    ready = await get(public, "/health/ready")
    assert (ready.status_code, ready.json()) == (503, {"status": "unavailable", "service": "gw"})
    assert (await get(public, "/health/live")).json() == {"status": "ok", "service": "gw"}
    assert (await get(public, "/metrics")).status_code == 404
    detailed = await get(admin_app(runtime), "/health/ready")
    assert detailed.status_code == 503 and detailed.json()["checks"]["redis"]["ok"] is False
