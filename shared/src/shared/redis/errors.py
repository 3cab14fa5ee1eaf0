"""Typed failures of the Redis client: what a caller catches when Redis cannot serve it.

They derive from redis-py's ``ConnectionError`` so code that already catches ``RedisError`` or
``ConnectionError`` keeps working; new code catches :class:`RedisUnavailable`.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError

from shared.breaker import CircuitOpenError


class RedisUnavailable(RedisConnectionError):
    """Redis could not serve a command within the retry budget; the last failure is chained."""


class PoolExhausted(RedisUnavailable):
    """No connection to the node became free within ``pool_timeout``."""


class TopologyUnavailable(RedisUnavailable):
    """The cluster's slot map could not be read, or it does not cover every slot."""


class RedisCircuitOpen(CircuitOpenError, RedisUnavailable):
    """Refused without a try: the breaker of the cluster (its slot map cannot be read) or of a
    single-node server is open. ``retry_after`` says when it probes again."""


class NodeCircuitOpen(RedisCircuitOpen):
    """Refused without a try: the breaker of the node that serves the key is open. The client
    re-reads the slot map and retries within its budget (a failover may move the slot)."""
