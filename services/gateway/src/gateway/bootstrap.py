"""The only wiring of the gateway: settings -> clients -> handlers -> REST, real-time, GraphQL.

``build(runtime)`` returns the public ASGI app: the REST API under ``/api/v1`` (OpenAPI at
``/openapi.json``; Swagger UI at ``/docs`` and ReDoc at ``/redoc``, their scripts and styles served
from ``/docs/static`` rather than a CDN, so the pages work where the gateway has no way out), the
public health routes (``/health/live``, a bare ``/health/ready``; the detailed one and
``/metrics`` are on the admin port), the WebSocket side (``install_realtime``), GraphQL
(``install_graphql``) and the browser chat client at ``/`` (``install_web_client``).
Everything connects in the app's lifespan, never at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from gateway.api import rest_auth, rest_chat, rest_muting, rest_notifications, rest_users
from gateway.api.errors import install_error_handlers
from gateway.api.events import CACHE_GROUP, INSTANCE_GROUP, GatewayEvents
from gateway.api.graphql import install_graphql
from gateway.api.middleware import RequestTracking
from gateway.api.web import install_web_client
from gateway.api.ws import install_realtime
from gateway.config import Settings
from gateway.domain.proxies import TrustedProxies
from gateway.handlers.backend import Backend
from gateway.handlers.deps import GatewayDeps
from gateway.handlers.invalidation import invalidation_handlers
from gateway.handlers.limits import ApiLimits, LimitPolicies
from gateway.handlers.responses import ResponseCache
from gateway.handlers.tokens import TokenVerifier
from gateway.store.redis_connection_slots import RedisConnectionSlots
from gateway.store.redis_revocations import RedisRevokedSessions
from shared.bus import ConsumerSettings, Publisher, Requester
from shared.bus.metrics import process_metrics
from shared.keys import KeySpace
from shared.pubsub import PubSub
from shared.ratelimit import RateLimitPolicy
from shared.service.http import public_health_routes
from shared.service.runtime import ServiceRuntime
from shared.transit import load_transit

KEYSPACE = KeySpace("gateway")
API_PREFIX = "/api/v1"

log = logging.getLogger(__name__)


def limit_policies(settings: Settings) -> LimitPolicies:
    """The API budgets the settings name."""
    return LimitPolicies(
        user=RateLimitPolicy(rate=settings.user_rate, period=1.0, burst=settings.user_burst),
        address=RateLimitPolicy(
            rate=settings.address_rate, period=1.0, burst=settings.address_burst
        ),
        auth=RateLimitPolicy(rate=settings.auth_rate, period=60.0, burst=settings.auth_burst),
    )


def wire(runtime: ServiceRuntime, requester: Requester) -> GatewayDeps:
    """The gateway's parts on a started runtime; nothing connects until the lifespan starts.

    ``requester`` is entered (subscribed to its reply channel) by the lifespan; its
    :class:`PubSub` carries the real-time channels too.
    """
    settings = runtime.settings
    assert isinstance(settings, Settings)
    client = runtime.redis
    transit = load_transit(
        settings.transit_keys,
        development=settings.environment == "development",
        variable="GATEWAY_TRANSIT_KEYS",
    )
    backend = Backend(requester, timeout=settings.command_timeout, transit=transit)
    tokens = TokenVerifier(
        backend,
        revoked=RedisRevokedSessions(client, KEYSPACE),
        audience=settings.token_audience,
        issuer=settings.token_issuer,
        leeway=settings.token_leeway,
        max_token_lifetime=settings.max_token_lifetime,
        refresh_interval=settings.key_refresh_interval,
    )
    return GatewayDeps(
        runtime=runtime,
        settings=settings,
        backend=backend,
        tokens=tokens,
        pubsub=requester.pubsub,
        limits=ApiLimits(client, KEYSPACE, limit_policies(settings)),
        responses=ResponseCache(client, KEYSPACE, enabled=settings.response_cache),
        connection_slots=RedisConnectionSlots(client, KEYSPACE),
        keyspace=KEYSPACE,
        instance_id=settings.instance,
    )


def api_router() -> APIRouter:
    """Every REST route under ``/api/v1``."""
    router = APIRouter(prefix=API_PREFIX)
    # Routes are matched in order, one by one: conversations (posts, history, reads) first, as
    # they carry most of the traffic. The paths are disjoint, so the order changes nothing else.
    for module in (rest_chat, rest_muting, rest_auth, rest_users, rest_notifications):
        router.include_router(module.router)
    return router


def build(runtime: ServiceRuntime, *, consumer_settings: ConsumerSettings | None = None) -> FastAPI:
    """The gateway's public ASGI app on a started runtime, with the admin routes beside the API."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    publisher = Publisher(runtime.redis, producer="gateway", metrics=process_metrics())
    # One PubSub for the reply channel and the real-time channels: they share its subscriber
    # connections (one per Redis primary), named <instance>-pubsub in CLIENT LIST.
    pubsub = PubSub(runtime.redis)
    requester = Requester(
        runtime.redis,
        publisher,
        instance_id=settings.instance,
        pubsub=pubsub,
        breaker=settings.breaker(),
    )
    deps = wire(runtime, requester)
    events = [
        GatewayEvents(
            runtime.redis,
            deps.tokens.event_handlers(),
            group=INSTANCE_GROUP,
            instance_id=settings.instance,
            settings=consumer_settings,
        ),
        GatewayEvents(
            runtime.redis,
            invalidation_handlers(deps.responses),
            group=CACHE_GROUP,
            instance_id=settings.instance,
            # Dropping cache entries twice is harmless: no "handled" marks for this group.
            settings=(consumer_settings or ConsumerSettings()).model_copy(update={"dedupe": False}),
        ),
    ]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(publisher.aclose)
            await stack.enter_async_context(requester)
            await deps.tokens.start()
            for consumer in events:
                await consumer.start()
                stack.push_async_callback(consumer.stop)
            yield

    app = FastAPIOffline(
        static_url="/docs/static",
        title="Parley gateway",
        version="0.1.0",
        description='The public API of Parley. Errors: `{"error": {"code", "message"}}`.',
        lifespan=lifespan,
    )
    app.state.deps = deps
    install_error_handlers(app)
    app.include_router(api_router())
    proxies = TrustedProxies(settings.trusted_proxies)  # one trust cache for HTTP and /ws
    app.add_middleware(
        RequestTracking,
        max_body_bytes=settings.max_body_bytes,
        trusted_proxies=proxies,
        hsts=settings.hsts,
    )
    # Public: liveness and a bare readiness for load balancers; the details and /metrics are on
    # the admin listener (GATEWAY_ADMIN_PORT, served by the runner), which is never published.
    app.router.routes.extend(public_health_routes(runtime))
    # /ws (gateway.api.ws); wraps the lifespan for its own start/stop
    install_realtime(app, deps, proxies=proxies)
    install_graphql(app, deps)  # /graphql (gateway.api.graphql)
    install_web_client(app)  # / and /assets: the browser chat client (gateway.api.web)
    return app
