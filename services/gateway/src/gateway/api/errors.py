"""Every error a client sees: ``{"error": {"code", "message"}}`` with a stable code.

Statuses follow :data:`gateway.domain.errors.HTTP_STATUS` (invalid 422 — 400 for a body that is
not JSON at all —, unauthenticated and token_expired 401, forbidden 403, not_found 404, conflict
409, payload_too_large 413, rate_limited 429 with ``Retry-After``, not_implemented 501,
unavailable 503, expired 504). ``field`` names the offending field when known. Nothing internal
(tracebacks, Redis errors) ever reaches a client: unexpected errors are logged and answered 500
``internal``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.domain import errors
from gateway.domain.errors import GatewayError
from gateway.handlers.limits import RateLimitedError

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: errors.INVALID,
    401: errors.UNAUTHENTICATED,
    403: errors.FORBIDDEN,
    404: errors.NOT_FOUND,
    405: "method_not_allowed",
    409: errors.CONFLICT,
    413: errors.PAYLOAD_TOO_LARGE,
    429: errors.RATE_LIMITED,
    503: errors.UNAVAILABLE,
}


def error_response(
    code: str,
    message: str,
    *,
    status: int | None = None,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A JSON error response with a stable code."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return Response(
        msgspec.json.encode({"error": error}),
        status_code=status or errors.http_status(code),
        media_type="application/json",
        headers=headers,
    )


def gateway_error_response(exc: GatewayError) -> Response:
    """The response for a :class:`GatewayError` (rate limits carry their headers)."""
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError):
        headers.update(exc.headers)
    elif exc.retry_after is not None and exc.code in (errors.RATE_LIMITED, errors.UNAVAILABLE):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if exc.code in (errors.UNAUTHENTICATED, errors.TOKEN_EXPIRED):
        error = "invalid_token" if exc.code == errors.TOKEN_EXPIRED else "invalid_request"
        headers["WWW-Authenticate"] = f'Bearer realm="parley", error="{error}"'
    return error_response(exc.code, exc.message, field=exc.field, headers=headers)


def _describe(problems: Sequence[Any]) -> tuple[str, str | None, int]:
    if not problems:
        return "the request is invalid", None, 422
    first = problems[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    status = 400 if first.get("type") == "json_invalid" else 422
    message = str(first.get("msg", "invalid value"))
    return (f"{field}: {message}" if field else message), field, status


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error raised while serving ``app`` in the shared shape."""

    async def on_gateway_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return gateway_error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message, field, status = _describe(exc.errors())
        return error_response(errors.INVALID, message, status=status, field=field)

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(
            exc.status_code, errors.INTERNAL if exc.status_code >= 500 else errors.INVALID
        )
        return error_response(code, str(exc.detail), status=exc.status_code, headers=exc.headers)

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        return error_response(errors.INTERNAL, "internal error", status=500)

    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
