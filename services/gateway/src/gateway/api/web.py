"""The browser chat client (``web/``, docs/web-client.md), served by the gateway itself at ``/``.

The bundle is built from ``web/`` and committed under ``gateway/static/web`` so that running the
fleet needs no Node; its files have fixed names, so answers carry ``Cache-Control: no-cache`` and
browsers revalidate them by ``ETag`` (a new bundle is picked up on the next load).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_ROOT = Path(__file__).resolve().parents[1] / "static" / "web"
"""The committed bundle: ``index.html`` and ``assets/``."""

_NO_CACHE = {"Cache-Control": "no-cache"}


class _Assets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_NO_CACHE)
        return response


def install_web_client(app: FastAPI, root: Path = WEB_ROOT) -> None:
    """``GET /`` is the client's page and ``/assets/*`` its script and styles."""
    index = root / "index.html"

    async def page(_: Request) -> Response:
        return FileResponse(index, media_type="text/html", headers=_NO_CACHE)

    app.add_route("/", page, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/assets", _Assets(directory=root / "assets", check_dir=False), name="web-assets")
