"""A service's AsyncAPI page: the fleet's contract document, rendered without a CDN.

``/docs/asyncapi.json`` is the AsyncAPI 3.0 document generated from the contracts registry
(``contracts.asyncapi``): every stream, channel, consumer group and message of the fleet.
``/docs/asyncapi`` renders it with the AsyncAPI React viewer, whose script and styles the service
serves itself (``static/asyncapi``, see its README), so the page works where there is no CDN.

FastStream's own page is not used: it documents the FastStream broker's subscribers, of which a
service has none (the bus is ``shared.bus``), so it is empty; it loads its viewer from unpkg.com;
and it comes with a "try it out" endpoint that publishes whatever an unauthenticated request sends.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from contracts.asyncapi import asyncapi_document

VIEWER = Path(__file__).parent / "static" / "asyncapi"
ASSETS = {
    "/docs/static/asyncapi/index.js": ("index.js", "text/javascript"),
    "/docs/static/asyncapi/default.min.css": ("default.min.css", "text/css"),
}
DOCS_PATHS = ("/docs/asyncapi", "/docs/asyncapi.json", *ASSETS)

_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>{title}</title>
    <link rel="stylesheet" href="/docs/static/asyncapi/default.min.css">
  </head>
  <body>
    <div id="asyncapi"></div>
    <script src="/docs/static/asyncapi/index.js"></script>
    <script>
      AsyncApiStandalone.render(
        {{schema: {document}, config: {{show: {{sidebar: true}}}}}},
        document.getElementById("asyncapi")
      );
    </script>
  </body>
</html>
"""


@functools.cache
def _document() -> dict[str, Any]:
    """Built on the first request, not at every service start (tens of milliseconds)."""
    return asyncapi_document()


@functools.cache
def _page(service: str) -> str:
    # Inside <script>, "</" could close the element early: JSON allows "<\/" for it.
    embedded = json.dumps(_document(), sort_keys=True).replace("</", "<\\/")
    return _PAGE.format(title=f"Parley contracts ({service})", document=embedded)


def docs_app(service: str) -> Starlette:
    """``/docs/asyncapi`` (the page), ``/docs/asyncapi.json`` and the viewer's two files."""

    async def html(_: Request) -> Response:
        return HTMLResponse(_page(service))

    async def raw(_: Request) -> Response:
        return JSONResponse(_document())

    def asset(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(_: Request) -> Response:
            return FileResponse(
                VIEWER / name, media_type=media_type, headers={"Cache-Control": "max-age=86400"}
            )

        return serve

    return Starlette(
        routes=[
            Route("/docs/asyncapi", html),
            Route("/docs/asyncapi.json", raw),
            *(Route(path, asset(name, media)) for path, (name, media) in ASSETS.items()),
        ]
    )
