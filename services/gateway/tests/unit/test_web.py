"""The web client's files as the gateway serves them (gateway.api.web)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from gateway.api.web import WEB_ROOT, install_web_client

pytestmark = pytest.mark.unit


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_web_client(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def test_the_root_is_the_client_page_referencing_only_its_own_assets(
    http: httpx.AsyncClient,
) -> None:
    r = await http.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert 'src="/assets/app.js"' in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN


async def test_assets_are_revalidated_by_etag_and_an_unknown_one_is_404(
    http: httpx.AsyncClient,
) -> None:
    r = await http.get("/assets/app.js")
    assert r.status_code == 200
    assert r.content == (WEB_ROOT / "assets" / "app.js").read_bytes()
    assert r.headers["cache-control"] == "no-cache"
    again = await http.get("/assets/app.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert (await http.get("/assets/nothing.js")).status_code == 404
