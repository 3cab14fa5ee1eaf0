"""The one way a service gets a Redis client: :func:`create_client` from :class:`RedisSettings`.

A ``redis://`` URL names one node of a cluster (the client discovers the rest) unless
``cluster=False``; the same interface serves a single-node Redis for small setups.
"""

from __future__ import annotations

from typing import TypeAlias

from pydantic import BaseModel, Field
from redis.asyncio import Redis, RedisCluster

AnyRedis: TypeAlias = RedisCluster | Redis
"""A cluster client or a single-node client; both speak the same commands."""


class RedisSettings(BaseModel):
    """How to reach Redis. Services embed this in their own ``Settings``."""

    url: str = "redis://127.0.0.1:7001"
    cluster: bool = True
    username: str | None = None
    password: str | None = None
    max_connections: int = Field(default=64, ge=1)


async def create_client(settings: RedisSettings) -> AnyRedis:
    """Connect to Redis as ``settings`` say; the caller closes it with ``aclose()``."""
    if settings.cluster:
        cluster = RedisCluster.from_url(
            settings.url,
            username=settings.username,
            password=settings.password,
            max_connections=settings.max_connections,
        )
        await cluster.initialize()
        return cluster
    return Redis.from_url(
        settings.url,
        username=settings.username,
        password=settings.password,
        max_connections=settings.max_connections,
    )
