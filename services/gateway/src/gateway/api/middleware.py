"""Request tracking and request-size bounds, as one pure ASGI middleware.

For every HTTP request:

* ``X-Request-ID``: the client's, when it is a valid id (``[A-Za-z0-9_.:-]``, at most 64), else a
  fresh UUIDv7; it is the correlation id of every command the request sends (so of every event
  those cause) and is echoed on the response.
* ``traceparent`` (W3C): continued when valid (same trace id, a new span id for the gateway),
  else started; it travels in every command's envelope and is echoed on the response. With
  tracing on it is the request's server span (:mod:`gateway.api.tracing`).
* The body is bounded: a ``Content-Length`` above the limit is answered 413 at once, and a body
  that streams past the limit is cut off with 413 too.
* The client's address: the peer, or behind a trusted proxy the right-most untrusted
  ``X-Forwarded-For`` hop (:mod:`gateway.domain.proxies`); it is what per-address limits count.
* One access-log line per request: method, path, status, latency, request id, client address.
* RED metrics per route template (:mod:`gateway.api.http_metrics`), from the same timing.
* Security headers on every response (:mod:`gateway.api.security_headers`).
* Headers that route code leaves in ``scope["gateway.headers"]`` (rate-limit headers) are added
  to the response, whatever its shape.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any, Final

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.base import new_message_id
from gateway.api import http_metrics
from gateway.api.security_headers import (
    API_CSP,
    DOC_PATHS,
    WEB_CLIENT_CSP,
    WEB_CLIENT_PATHS,
    common_headers,
    docs_csp,
)
from gateway.api.tracing import end_request_span, request_span
from gateway.domain import errors
from gateway.domain.proxies import TrustedProxies
from gateway.handlers.backend import RequestContext, new_traceparent, reset_context, use_context
from shared.service.logging import correlation_id, trace_context

log = logging.getLogger("gateway.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
HEADERS_KEY: Final = "gateway.headers"
API_CSP_BYTES: Final = API_CSP.encode()
WEB_CLIENT_CSP_BYTES: Final = WEB_CLIENT_CSP.encode()


def request_id_from(value: str | None) -> str:
    """The client's request id when it is a valid id, else a fresh one."""
    if value and _REQUEST_ID.match(value):
        return value
    return new_message_id()


def traceparent_from(value: str | None) -> str:
    """A traceparent for the gateway's span: continuing the client's trace when valid."""
    match = _TRACEPARENT.match(value.strip().lower()) if value else None
    if match is None or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return new_traceparent()
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"


def client_address(scope: Scope, headers: dict[str, str], proxies: TrustedProxies) -> str | None:
    """The client's address: the peer, or what a trusted proxy's X-Forwarded-For names."""
    client = scope.get("client")
    return proxies.client(str(client[0]) if client else None, headers.get("x-forwarded-for"))


class _BodyTooLargeError(Exception):
    pass


class RequestTracking:
    """The middleware (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        trusted_proxies: TrustedProxies | None = None,
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.security = common_headers(hsts=hsts)
        self.max_body_bytes = max_body_bytes
        self.proxies = trusted_proxies or TrustedProxies()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        span = request_span(scope, headers)
        ctx = RequestContext(
            request_id=request_id_from(headers.get("x-request-id")),
            traceparent=span.traceparent
            if span is not None
            else traceparent_from(headers.get("traceparent")),
            tracestate=(headers.get("tracestate") or None) and headers["tracestate"][:512],
            client_address=client_address(scope, headers, self.proxies),
            user_agent=headers.get("user-agent"),
        )
        scope["gateway.context"] = ctx
        extra: dict[str, str] = {}
        scope[HEADERS_KEY] = extra
        started = time.perf_counter()
        status = 500
        sent_start = False
        docs_page = scope["path"] in DOC_PATHS
        web_page = scope["path"] in WEB_CLIENT_PATHS
        held: Message | None = None

        async def send_tracked(message: Message) -> None:
            nonlocal status, sent_start, held
            if message["type"] == "http.response.start":
                sent_start = True
                status = message["status"]
                raw = list(message.get("headers", []))
                raw.append((b"x-request-id", ctx.request_id.encode()))
                raw.append((b"traceparent", (ctx.traceparent or "").encode()))
                raw.extend((k.lower().encode(), v.encode()) for k, v in extra.items())
                raw.extend(self.security)
                message = {**message, "headers": raw}
                if docs_page:  # its CSP names the page's inline scripts: wait for the body
                    held = message
                    return
                page_csp = WEB_CLIENT_CSP_BYTES if web_page else API_CSP_BYTES
                raw.append((b"content-security-policy", page_csp))
            elif held is not None:  # a docs page's body: one small chunk
                csp = docs_csp(scope["path"], message.get("body", b""))
                start = {
                    **held,
                    "headers": [*held["headers"], (b"content-security-policy", csp.encode())],
                }
                held = None
                await send(start)
            await send(message)

        token = use_context(ctx)
        corr = correlation_id.set(ctx.request_id)
        http_metrics.in_flight += 1
        trace = trace_context.set(ctx.traceparent)
        try:
            declared = headers.get("content-length")
            if declared is not None and (
                not declared.isdigit() or int(declared) > self.max_body_bytes
            ):
                await _too_large(send_tracked)
                return
            try:
                await self.app(scope, self._bounded(receive), send_tracked)
            except _BodyTooLargeError:
                if not sent_start:
                    await _too_large(send_tracked)
        finally:
            elapsed = time.perf_counter() - started
            http_metrics.in_flight -= 1
            http_metrics.observe(scope, status, elapsed)
            elapsed_ms = elapsed * 1000
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                elapsed_ms,
                extra={
                    "request_id": ctx.request_id,
                    "status": status,
                    "latency_ms": round(elapsed_ms, 2),
                    "client": ctx.client_address or "-",
                },
            )
            if span is not None:
                end_request_span(span, scope, status)
            trace_context.reset(trace)
            correlation_id.reset(corr)
            reset_context(token)

    def _bounded(self, receive: Receive) -> Receive:
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise _BodyTooLargeError
            return message

        return bounded


async def _too_large(send: Send) -> None:
    body = _error_body(errors.PAYLOAD_TOO_LARGE, "the request body is too large")
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _error_body(code: str, message: str) -> bytes:
    payload: dict[str, Any] = {"error": {"code": code, "message": message}}
    return msgspec.json.encode(payload)
