"""The one way a service gets a Redis client: :func:`create_client` from :class:`RedisSettings`.

A ``redis://`` URL names one node of a cluster (the client discovers the rest) unless
``cluster=False``; the same interface serves a single-node Redis for small setups. Either client
waits (bounded) for a free connection, retries connection errors, timeouts, TRYAGAIN and CLUSTERDOWN
with exponential backoff and jitter, and raises :class:`~shared.redis.errors.RedisUnavailable` when
the budget is spent. ``await client.aclose()`` closes every connection.
"""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shared.redis.resilient import (
    ResilientRedis,
    ResilientRedisCluster,
    RetryPolicy,
    WaitingConnectionPool,
)
from shared.redis.settings import RedisSettings

__all__ = ["AnyRedis", "RedisSettings", "create_client"]

AnyRedis: TypeAlias = RedisCluster | Redis
"""A cluster client or a single-node client; both speak the same commands."""


async def create_client(settings: RedisSettings) -> AnyRedis:
    """Connect to Redis as ``settings`` say; the caller closes it with ``aclose()``.

    A cluster client reads the slot map before returning, so a wrong URL fails here
    (:class:`~shared.redis.errors.TopologyUnavailable`) rather than on the first command.
    """
    policy = RetryPolicy(settings.retry_attempts, settings.retry_base, settings.retry_cap)
    if settings.cluster:
        return await _create_cluster(settings, policy)
    return _create_single(settings, policy)


def _credentials(settings: RedisSettings) -> dict[str, Any]:
    parts = urlsplit(settings.url)
    username = settings.username or (unquote(parts.username) if parts.username else None)
    password = settings.password
    if password is None and parts.password:
        password = unquote(parts.password)
    return {"username": username, "password": password}


def _connection_options(settings: RedisSettings) -> dict[str, Any]:
    return {
        **_credentials(settings),
        "client_name": settings.client_name,
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.socket_connect_timeout,
        "socket_keepalive": settings.socket_keepalive,
        "health_check_interval": settings.health_check_interval,
    }


def _tls_options(settings: RedisSettings) -> dict[str, Any]:
    if not settings.use_tls:
        return {}
    return {
        "ssl_ca_certs": str(settings.ssl_ca_certs) if settings.ssl_ca_certs else None,
        "ssl_certfile": str(settings.ssl_certfile) if settings.ssl_certfile else None,
        "ssl_keyfile": str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        "ssl_cert_reqs": settings.ssl_cert_reqs,
        "ssl_check_hostname": settings.ssl_check_hostname,
    }


async def _create_cluster(settings: RedisSettings, policy: RetryPolicy) -> ResilientRedisCluster:
    client = ResilientRedisCluster(
        policy=policy,
        pool_timeout=settings.pool_timeout,
        breaker=settings.breaker,
        total_connections=settings.max_connections_total,
        startup_nodes=_startup_nodes(settings),
        max_connections=settings.max_connections,
        ssl=settings.use_tls,
        **_tls_options(settings),
        **_connection_options(settings),
    )
    try:
        await client.initialize()
    except BaseException:
        await client.aclose()
        raise
    return client


def _startup_nodes(settings: RedisSettings) -> list[ClusterNode]:
    parts = urlsplit(settings.url)
    nodes = [ClusterNode(parts.hostname or "127.0.0.1", parts.port or 6379)]
    for seed in settings.seeds:
        host, _, port = seed.rpartition(":")
        nodes.append(ClusterNode(host or seed, int(port) if host else 6379))
    return nodes


def _create_single(settings: RedisSettings, policy: RetryPolicy) -> ResilientRedis:
    parts = urlsplit(settings.url)
    options = _connection_options(settings)
    # Our loop retries with backoff; a second, immediate retry inside redis-py would only add load.
    options["retry"] = Retry(NoBackoff(), 0)
    if parts.scheme == "unix":
        options.pop("socket_keepalive")
        options.update(connection_class=UnixDomainSocketConnection, path=parts.path)
    else:
        db = parts.path.strip("/")
        options.update(host=parts.hostname, port=parts.port or 6379, db=int(db or 0))
        if settings.use_tls:
            options.update(connection_class=SSLConnection, **_tls_options(settings))
    pool = WaitingConnectionPool(
        max_connections=settings.max_connections, timeout=settings.pool_timeout, **options
    )
    client = ResilientRedis(policy=policy, breaker=settings.breaker, connection_pool=pool)
    # The client owns the pool it was built with, so ``aclose()`` disconnects it too.
    client.auto_close_connection_pool = True
    return client
