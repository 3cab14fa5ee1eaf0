"""Redis for Parley: the cluster-aware client, its typed failures and its health check."""

from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.redis.errors import PoolExhausted, RedisUnavailable, TopologyUnavailable
from shared.redis.health import NodeHealth, RedisHealth, check_redis

__all__ = [
    "AnyRedis",
    "NodeHealth",
    "PoolExhausted",
    "RedisHealth",
    "RedisSettings",
    "RedisUnavailable",
    "TopologyUnavailable",
    "check_redis",
    "create_client",
]
