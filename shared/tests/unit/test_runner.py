"""The service runner: start-up objects frozen out of the collector; the HTTP server's settings."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from shared.service.runner import (
    DrainingServer,
    bind_socket,
    freeze_startup_objects,
    uvicorn_config,
)
from shared.service.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_objects_alive_at_start_up_leave_the_collectors_generations() -> None:
    built_at_start = [object()]
    try:
        frozen = freeze_startup_objects()
        assert frozen == gc.get_freeze_count() > 0
        assert not any(o is built_at_start for o in gc.get_objects())
        made_later = [object()]
        assert any(o is made_later for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(o is built_at_start for o in gc.get_objects())


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A WebSocket echo app (lifespan accepted) for the server settings below."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.send", "text": message["text"]})
    await receive()


@asynccontextmanager
async def serving(settings: ServiceSettings) -> AsyncIterator[str]:
    """The echo app served with ``settings``; yields its WebSocket URL."""
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(_echo, settings))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.mark.parametrize("compression", [False, True])
async def test_websocket_compression_is_negotiated_only_when_turned_on(compression: bool) -> None:
    # The client offers permessage-deflate (the websockets library's default, as browsers do).
    async with (
        serving(ServiceSettings(ws_compression=compression)) as url,
        connect(url, compression="deflate") as ws,
    ):
        offered = ws.response.headers.get("Sec-WebSocket-Extensions")
        await ws.send("hello " * 50)
        assert await ws.recv() == "hello " * 50
    assert (offered is not None and "permessage-deflate" in offered) is compression


async def test_a_websocket_message_over_ws_max_size_closes_the_connection_with_1009() -> None:
    settings = ServiceSettings()
    assert settings.ws_max_size == 64 * 1024
    async with serving(settings) as url:
        async with connect(url, max_size=None) as ws:
            await ws.send("x" * settings.ws_max_size)
            assert len(await ws.recv()) == settings.ws_max_size
        async with connect(url, max_size=None) as ws:
            await ws.send("x" * (settings.ws_max_size + 1))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1009


def test_uvicorn_never_takes_the_client_address_from_forwarded_headers() -> None:
    # Its default believes X-Forwarded-For from 127.0.0.1; the services decide for themselves.
    assert uvicorn_config(_echo, ServiceSettings()).proxy_headers is False


async def test_the_apps_before_shutdown_hook_closes_websockets_before_uvicorn_does() -> None:
    # uvicorn alone closes an open WebSocket with 1012 on shutdown; the app's hook gets there first.
    open_sockets: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        done = asyncio.Event()
        open_sockets.append((send, done))
        await done.wait()

    async def going_away() -> None:
        for send, done in open_sockets:
            await send({"type": "websocket.close", "code": 1001})
            done.set()

    app.state = type("State", (), {"before_shutdown": staticmethod(going_away)})()  # type: ignore[attr-defined]
    sock = bind_socket("127.0.0.1", 0)
    server = DrainingServer(uvicorn_config(app, ServiceSettings()))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        async with connect(f"ws://127.0.0.1:{sock.getsockname()[1]}/ws") as ws:
            server.should_exit = True
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        server.should_exit = True
        await task
        sock.close()
