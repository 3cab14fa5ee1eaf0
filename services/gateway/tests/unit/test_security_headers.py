"""Security headers on every answer; a docs-page CSP that names exactly its inline scripts."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.api.graphql import build_schema
from gateway.api.middleware import RequestTracking
from gateway.api.security_headers import docs_csp
from gateway.config import Settings

pytestmark = pytest.mark.unit

PAGE = b"<html><script src='/docs/static/x.js'></script><script>start()</script></html>"


def app(*, hsts: bool = False) -> RequestTracking:
    async def api(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def docs(_: Request) -> Response:
        return HTMLResponse(PAGE)

    routes = [Route("/api", api), Route("/docs", docs), Route("/redoc", docs), Route("/", docs)]
    inner = Starlette(routes=routes)
    return RequestTracking(inner, max_body_bytes=1024, hsts=hsts)


async def get(path: str, *, hsts: bool = False) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(hsts=hsts))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.get(path)


async def test_every_answer_carries_nosniff_frame_denial_and_a_referrer_policy() -> None:
    for path in ("/api", "/docs", "/missing"):
        r = await get(path)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "strict-transport-security" not in r.headers


async def test_api_answers_allow_a_browser_to_load_nothing() -> None:
    r = await get("/api")
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


async def test_the_docs_page_csp_allows_its_own_origin_and_its_inline_script_only() -> None:
    r = await get("/docs")
    assert r.content == PAGE
    csp = r.headers["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(b"start()").digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in csp
    assert "unsafe-eval" not in csp and "http" not in csp
    assert int(r.headers["content-length"]) == len(PAGE)


async def test_the_web_client_may_load_and_connect_to_its_own_origin_only() -> None:
    csp = (await get("/")).headers["content-security-policy"]
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["connect-src"] == "'self'"  # REST and /ws, nowhere else
    assert directives["frame-ancestors"] == "'none'"
    assert "http" not in csp and "unsafe-eval" not in csp


def test_no_page_may_evaluate_strings_and_only_redoc_starts_blob_workers() -> None:
    assert "unsafe-eval" not in docs_csp("/redoc", b"") + docs_csp("/docs", b"")
    assert "worker-src 'self' blob:" in docs_csp("/redoc", b"")
    assert "blob:" not in docs_csp("/docs", b"")


async def test_hsts_is_sent_only_when_asked_for() -> None:
    r = await get("/api", hsts=True)
    assert r.headers["strict-transport-security"].startswith("max-age=")


async def test_without_introspection_a_schema_query_is_refused() -> None:
    closed = await build_schema(introspection=False).execute("{ __schema { types { name } } }")
    assert closed.errors and "introspection" in closed.errors[0].message.lower()
    opened = await build_schema(introspection=True).execute("{ __schema { types { name } } }")
    assert not opened.errors


def test_introspection_is_off_in_production_unless_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().introspection
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", "production")
    assert not Settings().introspection
    monkeypatch.setenv("GATEWAY_GRAPHQL_INTROSPECTION", "true")
    assert Settings().introspection
