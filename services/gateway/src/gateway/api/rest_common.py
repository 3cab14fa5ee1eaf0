"""What every REST route shares: the deps, the viewer (verified token), limits, JSON and caching."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from gateway.api.middleware import HEADERS_KEY
from gateway.handlers.backend import RequestContext, current_context, use_context
from gateway.handlers.deps import GatewayDeps
from gateway.handlers.responses import etag_matches, etag_of
from gateway.handlers.tokens import AccessClaims, TokenError

_bearer = HTTPBearer(auto_error=False, description="An access token from /auth/login.")

JSON = "application/json"


async def get_deps(request: Request) -> GatewayDeps:
    """The instance's :class:`GatewayDeps` (set on ``app.state`` by bootstrap).

    ``async`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    hand-off on every request for a dictionary lookup."""
    deps: GatewayDeps = request.app.state.deps
    return deps


Deps = Annotated[GatewayDeps, Depends(get_deps)]


def request_context(request: Request) -> RequestContext:
    """The request's context (from the tracking middleware), or a fresh one."""
    ctx = request.scope.get("gateway.context")
    return ctx if isinstance(ctx, RequestContext) else (current_context() or RequestContext.new())


def _add_headers(request: Request, headers: dict[str, str]) -> None:
    extra = request.scope.get(HEADERS_KEY)
    if isinstance(extra, dict):
        extra.update(headers)


async def limit_anonymous(request: Request, deps: Deps) -> None:
    """Count a request without a user against its client address."""
    ctx = request_context(request)
    _add_headers(request, await deps.limits.check(user_id=None, address=ctx.client_address))


async def limit_credentials(request: Request, deps: Deps) -> None:
    """Count a register/login/refresh attempt against the stricter per-address budget."""
    ctx = request_context(request)
    headers = await deps.limits.check(user_id=None, address=ctx.client_address, auth=True)
    _add_headers(request, headers)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated caller: its claims and the request context with its ids."""

    claims: AccessClaims
    ctx: RequestContext

    @property
    def user_id(self) -> str:
        """The caller's user id."""
        return self.claims.user_id

    @property
    def session_id(self) -> str:
        """The caller's session."""
        return self.claims.session_id


async def viewer(
    request: Request,
    deps: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Viewer:
    """Verify the bearer token (401 when missing or invalid), then count the request."""
    ctx = request_context(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        # Refused requests still count against the address, so guessing tokens is throttled.
        await deps.limits.check(user_id=None, address=ctx.client_address)
        raise TokenError("missing")
    try:
        claims = await deps.tokens.verify(credentials.credentials)
    except TokenError:
        await deps.limits.check(user_id=None, address=ctx.client_address)
        raise
    headers = await deps.limits.check(user_id=claims.user_id, address=ctx.client_address)
    _add_headers(request, headers)
    ctx = dataclasses.replace(ctx, user_id=claims.user_id, session_id=claims.session_id)
    request.scope["gateway.context"] = ctx
    use_context(ctx)  # the middleware resets the context when the request ends
    return Viewer(claims=claims, ctx=ctx)


Me = Annotated[Viewer, Depends(viewer)]


def json_response(
    content: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response (msgspec encodes datetimes as RFC 3339)."""
    return Response(
        msgspec.json.encode(content), status_code=status, media_type=JSON, headers=headers
    )


def no_content() -> Response:
    """204."""
    return Response(status_code=204)


async def cached_get(
    request: Request,
    deps: GatewayDeps,
    me: Viewer,
    route: str,
    load: Callable[[list[str]], Awaitable[Any]],
) -> Response:
    """A GET answered from the viewer's response cache, with ``ETag`` and ``304``.

    ``load(tags)`` returns the JSON-able content and appends the tags of the entities it shows.
    """

    async def body(tags: list[str]) -> bytes:
        return msgspec.json.encode(await load(tags))

    cached = await deps.responses.get_or_load(
        route,
        viewer=me.user_id,
        path=request.url.path,
        query=request.url.query,
        load=body,
    )
    return _conditional(request, cached.body, cached.etag)


async def fresh_get(request: Request, load: Callable[[list[str]], Awaitable[Any]]) -> Response:
    """A GET answered from the owning service every time (no response cache), still with
    ``ETag`` and ``304`` so an unchanged answer costs the client no body."""
    body = msgspec.json.encode(await load([]))
    return _conditional(request, body, etag_of(body))


def _conditional(request: Request, body: bytes, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JSON, headers=headers)
