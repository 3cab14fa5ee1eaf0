"""The WebSocket endpoint ``/ws``: authenticate, then pump frames both ways (docs/websocket.md).

Thin: this module only speaks WebSocket. What frames mean, the send queue, recovery and
subscriptions live in :mod:`gateway.handlers.realtime` and its siblings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, WebSocket
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState

from gateway.api.middleware import client_address
from gateway.domain import close_codes, errors
from gateway.domain.clock import Clock
from gateway.domain.errors import GatewayError
from gateway.domain.frames import AuthFrame, FrameError, error_frame, parse_client_frame
from gateway.domain.proxies import TrustedProxies
from gateway.handlers.deps import GatewayDeps
from gateway.handlers.realtime import Close, Connection, Identity
from gateway.handlers.realtime_frames import encode
from gateway.handlers.realtime_lifecycle import (
    ConnectionFacts,
    ConnectionRegistry,
    Heartbeats,
    close_connection,
    open_connection,
)
from gateway.handlers.realtime_limits import SocketLimits
from gateway.handlers.realtime_metrics import count_close, count_sent, track_connections
from gateway.handlers.realtime_options import RealtimeOptions
from gateway.handlers.subscriptions import ChannelHub
from gateway.handlers.tokens import AccessClaims, TokenError, TokenExpiredError
from shared.bus import Publisher
from shared.bus.metrics import process_metrics
from shared.ratelimit import RateLimiter, RateLimitPolicy

log = logging.getLogger(__name__)

__all__ = ["Realtime", "install_realtime"]


@dataclass(kw_only=True)
class Realtime:
    """The real-time side of one gateway instance (``app.state.realtime``)."""

    deps: GatewayDeps
    options: RealtimeOptions
    hub: ChannelHub
    facts: ConnectionFacts
    connections: ConnectionRegistry
    publisher: Publisher
    limits: SocketLimits
    proxies: TrustedProxies
    admissions: asyncio.Semaphore
    """Connections between their accept and ``ready`` at once (``options.admissions``)."""
    clock: Clock
    """Every socket's heartbeats and token expiry (one loop timer for all)."""

    async def going_away(self, *, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        """Close every socket with 1001 and wait (at most ``timeout``) until they are gone.

        Run on SIGTERM before uvicorn's own shutdown, which would close them with 1012.
        """
        self.connections.close_all(close_codes.GOING_AWAY)
        deadline = time.monotonic() + timeout
        while len(self.connections) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        """Close every socket (1001), unsubscribe, flush connection facts."""
        self.connections.close_all(close_codes.GOING_AWAY)
        await asyncio.sleep(0)  # let the writers send their close frames
        await self.hub.aclose()
        await self.publisher.aclose()
        self.clock.close()


def install_realtime(
    app: FastAPI,
    deps: GatewayDeps,
    *,
    options: RealtimeOptions | None = None,
    proxies: TrustedProxies | None = None,
) -> Realtime:
    """Mount ``/ws`` on ``app``; revoked sessions' sockets close; shutdown closes the rest."""
    publisher = Publisher(deps.runtime.redis, producer="gateway", metrics=process_metrics())
    options = options or RealtimeOptions.from_env()
    rt = Realtime(
        deps=deps,
        options=options,
        hub=ChannelHub(deps.pubsub),
        facts=ConnectionFacts(publisher, gateway_id=deps.instance_id),
        connections=ConnectionRegistry(),
        publisher=publisher,
        limits=socket_limits(deps, options),
        proxies=proxies or TrustedProxies(deps.settings.trusted_proxies),
        admissions=asyncio.Semaphore(options.admissions),
        # Fine enough that the beats of a storm of connects do not start in the same instant
        # (each renews a slot in Redis): 20 buckets a second.
        clock=Clock(resolution=min(0.05, options.heartbeat_interval / 4)),
    )
    deps.tokens.on_revoked(rt.connections.on_revoked)
    track_connections(rt.connections.__len__)
    app.state.realtime = rt
    app.state.before_shutdown = rt.going_away  # shared.service.runner.DrainingServer runs it

    _serve_ahead_of_the_stack(app, rt)
    _close_on_shutdown(app, rt)
    return rt


PATH = "/ws"


def _serve_ahead_of_the_stack(app: FastAPI, rt: Realtime) -> None:
    """``/ws`` is answered ahead of the application's middleware and router.

    A socket lives for hours, and every layer it passes through keeps a frame (and FastAPI's
    route two exit stacks, its dependency solving and parsed query) alive as long: some 10 KB a
    socket, half of what uvicorn itself holds for one. None of them does anything for a
    WebSocket here: the request tracking, security headers and body limit are HTTP's, the
    exception handlers are the API's (``serve`` closes with a code of its own on every error),
    and the route has no dependencies. Every other scope goes through the stack as before.
    """
    build = app.build_middleware_stack

    def build_with_ws_ahead() -> ASGIApp:
        stack = build()

        async def ws_ahead(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "websocket" and _route_path(scope) == PATH:
                await serve(WebSocket(scope, receive, send), rt)
            else:
                await stack(scope, receive, send)

        return ws_ahead

    app.build_middleware_stack = build_with_ws_ahead  # type: ignore[method-assign]


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def socket_limits(deps: GatewayDeps, options: RealtimeOptions) -> SocketLimits:
    """The handshake budget and connection cap ``options`` name, counted in the gateway's Redis."""
    policy = RateLimitPolicy(rate=options.handshake_rate, burst=options.handshake_burst)
    return SocketLimits(
        RateLimiter(deps.runtime.redis, deps.keyspace, "ws-handshake", policy),
        deps.connection_slots,
        options,
    )


def _close_on_shutdown(app: FastAPI, rt: Realtime) -> None:
    # bootstrap owns the lifespan; ours wraps it so sockets close before the clients it opened.
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            try:
                yield state
            finally:
                await rt.aclose()

    app.router.lifespan_context = lifespan


async def serve(websocket: WebSocket, rt: Realtime) -> None:
    """One connection from accept to close: within the address's handshake budget, then
    authenticated, then within the user's connection cap.

    Its Redis work holds one of the process's ``admissions``: when a gateway restarts, its
    thousands of clients reconnect at once, and every admission takes Redis commands (the
    budget, the slot, the listing, the subscriptions) from a bounded pool. All of them at once
    would wait out the pool's timeout and fail (the limits then fail open); in turns they
    finish sooner. The turn is held for the budget's check, given back while the client is
    awaited (its ``auth`` frame: a client that never sends one must not hold a turn), taken
    again for the slot and the subscriptions, and given back once ``ready`` is sent.
    """
    await websocket.accept()
    turn = Turn(rt.admissions)
    try:
        await _admit(websocket, rt, turn)
    finally:
        turn.give_back()


class Turn:
    """One connection's hold on the process's admissions, given back once."""

    __slots__ = ("_held", "_semaphore")

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self._held = False

    async def take(self) -> None:
        await self._semaphore.acquire()
        self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


async def _admit(websocket: WebSocket, rt: Realtime, turn: Turn) -> None:
    address = client_address(websocket.scope, dict(websocket.headers), rt.proxies)
    await turn.take()
    retry_after = await rt.limits.handshake(address)
    turn.give_back()
    if retry_after is not None:
        limited = GatewayError(
            errors.RATE_LIMITED,
            "too many connection attempts from this address; retry later",
            retry_after=retry_after,
        )
        await _refuse(websocket, close_codes.RATE_LIMITED, limited)
        return
    claims, device = await _authenticate(websocket, rt)
    if claims is None:
        return
    identity = Identity(
        user_id=claims.user_id,
        session_id=claims.session_id,
        device_id=device or "default",
        connection_id=uuid.uuid4().hex,
        expires_at=claims.expires_at,
    )
    await turn.take()
    if not await rt.limits.claim(identity.user_id, identity.connection_id):
        cap = rt.options.max_user_connections
        full = GatewayError(
            errors.TOO_MANY_CONNECTIONS, f"at most {cap} connections per user; close one first"
        )
        await _refuse(websocket, close_codes.TOO_MANY_CONNECTIONS, full)
        return
    try:
        await _run(websocket, rt, identity, turn)
    finally:
        await rt.limits.release(identity.user_id, identity.connection_id)


async def _run(websocket: WebSocket, rt: Realtime, identity: Identity, turn: Turn) -> None:
    conn = Connection(identity, hub=rt.hub, backend=rt.deps.backend, options=rt.options)
    rt.connections.add(conn)
    expiry = rt.clock.call_later(
        identity.expires_at - time.time(),
        functools.partial(conn.close, close_codes.TOKEN_EXPIRED),
    )
    tasks: list[asyncio.Task[Any]] = []
    beats: Heartbeats | None = None
    try:
        await open_connection(conn, rt.facts)
        turn.give_back()  # ready: the next connection's turn
        # One task of ours per socket (next to uvicorn's, which writes): the reader. The
        # heartbeat and the slot renewal are on the clock. The writer returns on a decided close
        # or once the reader has seen the client go.
        renew = functools.partial(rt.limits.renew, identity.user_id, identity.connection_id)
        beats = Heartbeats(conn, rt.facts, rt.clock, renew)
        reader = asyncio.create_task(_read(websocket, conn))
        reader.add_done_callback(conn.peer_gone_callback)
        tasks = [reader]
        await _write(websocket, conn)
    except Exception:
        log.exception("connection %s failed", identity.connection_id)
        conn.close(close_codes.INTERNAL_ERROR)
    finally:
        rt.clock.cancel(expiry)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if beats is not None:
            await beats.stop()
        rt.connections.remove(conn)
        if conn.closing is not None:
            await _close(websocket, conn.closing)
        await close_connection(conn, rt.facts)


async def _authenticate(
    websocket: WebSocket, rt: Realtime
) -> tuple[AccessClaims | None, str | None]:
    # Parsed here, not through ``websocket.query_params``, which would keep the parsed query
    # on the socket's object for as long as it is open.
    raw_query = websocket.scope.get("query_string", b"").decode("latin-1")
    query = dict(parse_qsl(raw_query, keep_blank_values=True))
    token, device = query.get("token"), query.get("device_id")
    if not token:
        frame = await _auth_frame(websocket, rt.options.auth_timeout)
        if frame is None:
            return None, None
        token, device = frame.token, frame.device_id or device
    if device is not None and not 1 <= len(device) <= 128:
        device = None
    try:
        return await rt.deps.tokens.verify(token), device
    except TokenExpiredError as e:
        await _refuse(websocket, close_codes.TOKEN_EXPIRED, e)
    except TokenError as e:
        await _refuse(websocket, close_codes.UNAUTHENTICATED, e)
    except GatewayError as e:  # keys unavailable: not the client's fault
        await _refuse(websocket, close_codes.TRY_AGAIN_LATER, e)
    return None, None


async def _auth_frame(websocket: WebSocket, timeout: float) -> AuthFrame | None:  # noqa: ASYNC109
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError:
        await _refuse(websocket, close_codes.UNAUTHENTICATED, None, "no auth frame in time")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    try:
        frame = parse_client_frame(message.get("text") or message.get("bytes") or b"")
    except FrameError as e:
        await _refuse(websocket, close_codes.UNAUTHENTICATED, e)
        return None
    if not isinstance(frame, AuthFrame):
        await _refuse(websocket, close_codes.UNAUTHENTICATED, None, "the first frame must be auth")
        return None
    return frame


async def _refuse(
    websocket: WebSocket, code: int, error: GatewayError | None, message: str = ""
) -> None:
    if error is not None:
        frame = error_frame(error.code, error.message)
        if error.retry_after is not None:
            frame["retry_after"] = round(error.retry_after, 3)
        text = encode(frame)
    else:
        text = encode(error_frame(errors.UNAUTHENTICATED, message))
    with contextlib.suppress(Exception):
        await websocket.send_text(text)
    await _close(websocket, Close(code, close_codes.REASONS.get(code, "")))


async def _close(websocket: WebSocket, close: Close) -> None:
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    count_close(close.code, by="server")
    with contextlib.suppress(Exception):
        await websocket.close(close.code, close.reason)


async def _write(websocket: WebSocket, conn: Connection) -> None:
    while True:
        item = await conn.next_outgoing()
        if item is None or isinstance(item, Close):
            return
        try:
            await websocket.send_text(item.text)
        except Exception as e:  # the client went away under the send
            log.debug("connection %s: send failed: %r", conn.identity.connection_id, e)
            return
        count_sent(item.kind, item.born)
        # Not held while waiting for the next one (an idle socket would keep its last frame:
        # ``ready`` with the list of its conversations).
        del item


async def _read(websocket: WebSocket, conn: Connection) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                count_close(message.get("code") or 1005, by="client")
                return
            data = message.get("text")
            conn.receive(data if data is not None else message.get("bytes") or b"")
