"""The baseline of ``bench/ws_scale.py``: a bare uvicorn + Starlette WebSocket echo server.

    python bench/ws_bare.py PORT

Configured by the services' own ``shared.service.runner.uvicorn_config`` (same uvicorn, same
``websockets`` implementation, same compression and keep-alive settings) and run on uvloop as
the services are, so the gateway's figures divided by this server's measure what the gateway
adds to a socket, nothing else.
"""

from __future__ import annotations

import sys

import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from shared.service.runner import uvicorn_config
from shared.service.settings import ServiceSettings


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


def main() -> None:
    config = uvicorn_config(Starlette(routes=[WebSocketRoute("/ws", echo)]), ServiceSettings())
    config.host, config.port = "127.0.0.1", int(sys.argv[1])
    uvloop.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
