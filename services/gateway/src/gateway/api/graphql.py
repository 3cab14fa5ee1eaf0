"""GraphQL at ``/graphql``: bearer auth, per-viewer result cache, depth and cost limits.

``POST /graphql`` takes ``{"query", "variables"?, "operationName"?}`` and answers the standard
``{"data", "errors"?}``. A query's result is cached per viewer under a hash of (viewer, the
normalized query text, the variables, the operation name) for a short TTL, tagged with the
entities it contains; an event about one of them (through the gateway's invalidation consumer,
:mod:`gateway.handlers.invalidation`) or the viewer's own mutation drops it. Results with errors
are never cached, nor results that show the viewer's notifications (``GraphContext.volatile``).
``X-Cache: hit|miss`` says which it was.

Why strawberry: typed resolvers from plain Python classes, and graphql-core's parser, validator
and executor underneath; we only add what is ours (auth, caching, the cost rule).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import strawberry
from fastapi import FastAPI, Request
from fastapi.responses import Response
from graphql import (
    ASTValidationRule,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    OperationType,
    parse,
    print_ast,
)
from strawberry.extensions import AddValidationRules, MaxAliasesLimiter, QueryDepthLimiter

from gateway.api.errors import gateway_error_response as rest_error_response
from gateway.api.graphql_limits import cost_limit_rule, request_charge
from gateway.api.graphql_schema import GraphContext, Mutation, Query
from gateway.domain import errors
from gateway.domain.errors import GatewayError
from gateway.handlers.backend import RequestContext, current_context
from gateway.handlers.deps import GatewayDeps
from gateway.handlers.tokens import AccessClaims
from shared.cache import Cache
from shared.ttl import TtlPolicy, TtlRule

__all__ = ["GRAPHQL_TTL", "GraphQLEndpoint", "build_schema", "install_graphql"]

GRAPHQL_TTL = TtlPolicy({"graphql": TtlRule(ttl=15, jitter=0.1)})
"""How long a cached result lives at most (events and mutations invalidate sooner)."""
MAX_DEPTH: Final = 8
MAX_COST: Final = 5000
MAX_ALIASES: Final = 15
LIST_FIELDS: Final = frozenset({"conversations", "messages", "notifications"})


def build_schema(
    *,
    max_depth: int = MAX_DEPTH,
    max_cost: int = MAX_COST,
    max_aliases: int = MAX_ALIASES,
    introspection: bool = True,
) -> strawberry.Schema:
    """The schema with its depth, alias and cost limits; without ``introspection`` (production)
    a query for ``__schema`` or ``__type`` is refused during validation."""
    rules: list[type[ASTValidationRule]] = [cost_limit_rule(max_cost, list_fields=LIST_FIELDS)]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        # Factories, not instances: a fresh extension per execution (and what the stubs want).
        extensions=[
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            lambda: AddValidationRules(rules),
        ],
    )


class CachedResult(msgspec.Struct, frozen=True, array_like=True):
    """A successful result's JSON body."""

    body: bytes


class _Uncacheable(Exception):
    """Carries a result that must not be cached out of the cache's loader."""

    def __init__(self, body: bytes) -> None:
        self.body = body


@dataclass(frozen=True, slots=True)
class Operation:
    """A parsed request: its normalized text, whether it only reads, and its rate-limit charge."""

    normalized: str
    is_query: bool
    charge: int = 1


def parse_operation(query: str, operation_name: str | None) -> Operation | None:
    """The normalized document and its kind, or None if it does not parse (not cacheable)."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        o for o in ops if operation_name is None or (o.name and o.name.value == operation_name)
    ]
    is_query = bool(chosen) and all(o.operation == OperationType.QUERY for o in chosen[:1])
    charge = request_charge(document, operation_name, list_fields=LIST_FIELDS)
    return Operation(print_ast(document), is_query, charge)


def cache_key(viewer: str, op: Operation, variables: dict[str, Any], name: str | None) -> str:
    """A key of one viewer's request: no client text reaches a Redis key, only its hash."""
    canonical = json.dumps(variables, sort_keys=True, separators=(",", ":"), default=str)
    raw = "\x1f".join((viewer, op.normalized, canonical, name or "")).encode()
    return hashlib.sha256(raw).hexdigest()[:40]


class GraphQLEndpoint:
    """Executes requests for one gateway instance."""

    def __init__(self, deps: GatewayDeps, schema: strawberry.Schema | None = None) -> None:
        self.deps = deps
        self.schema = schema or build_schema(introspection=deps.settings.introspection)
        self.cache: Cache[CachedResult] = Cache(
            deps.runtime.redis,
            deps.keyspace,
            "graphql",
            CachedResult,
            rule=GRAPHQL_TTL["graphql"],
            enabled=deps.settings.response_cache,
        )

    async def handle(self, request: Request) -> Response:
        """One POST /graphql."""
        ctx = current_context() or RequestContext.new()
        try:
            viewer = await self._viewer(request, ctx)
            query, variables, name = await _body(request)
            op = parse_operation(query, name)
            # Charged like REST, by the operation's cost, before anything runs or is cached.
            limit_headers = await self.deps.limits.check(
                user_id=viewer.user_id,
                address=ctx.client_address,
                cost=op.charge if op is not None else 1,
            )
        except GatewayError as e:
            return gateway_error_response(e)
        context = GraphContext(viewer=viewer, backend=self.deps.backend, request=ctx)
        if op is None or not op.is_query:
            body = await self._execute(query, variables, name, context)
            if context.invalidate:
                await self.deps.responses.invalidate(context.invalidate)
            return _json(body, cache="bypass", headers=limit_headers)
        missed = False

        async def load() -> CachedResult:
            nonlocal missed
            missed = True
            result = await self._execute(query, variables, name, context, cacheable=True)
            return CachedResult(result)

        key = cache_key(viewer.user_id, op, variables, name)
        try:
            cached = await self.cache.get_or_load(key, load, tags=context.tags)
        except _Uncacheable as e:
            return _json(e.body, cache="miss", headers=limit_headers)
        assert cached is not None
        return _json(cached.body, cache="miss" if missed else "hit", headers=limit_headers)

    async def _execute(
        self,
        query: str,
        variables: dict[str, Any],
        name: str | None,
        context: GraphContext,
        *,
        cacheable: bool = False,
    ) -> bytes:
        result = await self.schema.execute(
            query, variable_values=variables, context_value=context, operation_name=name
        )
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        body = msgspec.json.encode(out)
        if cacheable and (result.errors or context.volatile):
            raise _Uncacheable(body)
        return body

    async def _viewer(self, request: Request, ctx: RequestContext) -> AccessClaims:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise GatewayError(errors.UNAUTHENTICATED, "a bearer access token is required")
            return await self.deps.tokens.verify(token.strip())
        except GatewayError:
            # Refused requests still count against the address, as on REST: no free guessing.
            await self.deps.limits.check(user_id=None, address=ctx.client_address)
            raise


async def _body(request: Request) -> tuple[str, dict[str, Any], str | None]:
    try:
        data = json.loads(await request.body())
    except ValueError as e:
        raise GatewayError(errors.INVALID, "the body must be JSON") from e
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        raise GatewayError(errors.INVALID, "the body needs a string 'query'")
    variables = data.get("variables") or {}
    name = data.get("operationName")
    if not isinstance(variables, dict) or not (name is None or isinstance(name, str)):
        raise GatewayError(
            errors.INVALID, "'variables' must be an object, 'operationName' a string"
        )
    return data["query"], variables, name


def _json(body: bytes, *, cache: str, headers: dict[str, str]) -> Response:
    return Response(body, media_type="application/json", headers={**headers, "X-Cache": cache})


def gateway_error_response(exc: GatewayError) -> Response:
    """A GraphQL-shaped error answer (with the REST statuses and headers, e.g. ``Retry-After``)."""
    rest = rest_error_response(exc)
    body = {"data": None, "errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}
    headers = {k: v for k, v in rest.headers.items() if k.lower() not in _BODY_HEADERS}
    return Response(
        msgspec.json.encode(body),
        status_code=rest.status_code,
        media_type="application/json",
        headers=headers,
    )


_BODY_HEADERS: Final = frozenset({"content-length", "content-type"})


def install_graphql(app: FastAPI, deps: GatewayDeps) -> GraphQLEndpoint:
    """Mount ``POST /graphql`` on ``app``."""
    endpoint = GraphQLEndpoint(deps)
    app.state.graphql = endpoint

    @app.post("/graphql", tags=["graphql"], summary="GraphQL (queries cached per viewer)")
    async def graphql_endpoint(request: Request) -> Response:
        return await endpoint.handle(request)

    return endpoint
