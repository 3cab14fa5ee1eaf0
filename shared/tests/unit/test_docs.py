"""A service's AsyncAPI page and document, served in-process."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from contracts.asyncapi import asyncapi_document
from shared.service.docs import DOCS_PATHS, docs_app

pytestmark = pytest.mark.unit


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=docs_app("chat"))
    async with httpx.AsyncClient(transport=transport, base_url="http://chat") as client:
        yield client


async def test_the_document_is_the_registry_s_asyncapi_document(http: httpx.AsyncClient) -> None:
    got = await http.get("/docs/asyncapi.json")
    assert got.status_code == 200
    assert got.json() == json.loads(json.dumps(asyncapi_document()))
    assert "chat.receive.user.events" in got.json()["operations"]


async def test_the_page_embeds_the_document_and_loads_nothing_from_elsewhere(
    http: httpx.AsyncClient,
) -> None:
    page = (await http.get("/docs/asyncapi")).text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/docs/static/asyncapi/") for s in sources)
    embedded = re.search(r"schema: (\{.*\}), config", page, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == json.loads(json.dumps(asyncapi_document()))
    assert "</script" not in embedded.group(1)  # the JSON cannot end the script element


@pytest.mark.parametrize(
    ("path", "media_type", "marker"),
    [
        ("/docs/static/asyncapi/index.js", "text/javascript", b"AsyncApiStandalone"),
        ("/docs/static/asyncapi/default.min.css", "text/css", b"{"),
    ],
)
async def test_the_viewer_files_are_served_by_the_service(
    http: httpx.AsyncClient, path: str, media_type: str, marker: bytes
) -> None:
    got = await http.get(path)
    assert got.status_code == 200
    assert got.headers["content-type"].startswith(media_type)
    assert marker in got.content


async def test_every_declared_path_is_served(http: httpx.AsyncClient) -> None:
    for path in DOCS_PATHS:
        assert (await http.get(path)).status_code == 200, path
