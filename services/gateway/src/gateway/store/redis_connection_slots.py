"""Each user's live WebSockets over every gateway, in Redis, so a cap holds fleet-wide.

One sorted set per user, ``gateway:wsconn:{user:<id>}``: member = connection id, score = the
Redis-clock time (ms) its slot lapses. A gateway renews its connections' slots with their
heartbeats and removes them on close; a gateway that dies without closing leaves slots that lapse
within one TTL, and the key itself expires with its newest slot. Lapsed slots are pruned by every
claim, in the same script, so the count a claim sees is of live connections only.
"""

from __future__ import annotations

import math

from redis.commands.core import AsyncScript

from shared.keys import KeySpace
from shared.redis.client import AnyRedis

# KEYS: the user's set. ARGV: connection id, cap (0: no cap, a renewal), ttl (ms).
# Returns 1 if the connection holds a slot now, 0 if the cap refused it.
_CLAIM = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local cap = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if cap > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= cap then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""


class RedisConnectionSlots:
    """:class:`gateway.store.protocols.ConnectionSlots` on Redis (see the module docstring)."""

    def __init__(self, client: AnyRedis, keyspace: KeySpace) -> None:
        self._client = client
        self._keyspace = keyspace
        self._script: AsyncScript = client.register_script(_CLAIM)

    def key(self, user_id: str) -> str:
        """The set of ``user_id``'s connections."""
        return self._keyspace.key("wsconn", tag=f"user:{user_id}")

    async def claim(self, user_id: str, connection_id: str, *, cap: int, ttl: float) -> bool:
        """One script: prune lapsed slots, count, take one if under ``cap``."""
        return await self._run(user_id, connection_id, cap=cap, ttl=ttl)

    async def renew(self, user_id: str, connection_id: str, *, ttl: float) -> None:
        """The claim script without a cap: the slot's lapse moves ``ttl`` ahead."""
        await self._run(user_id, connection_id, cap=0, ttl=ttl)

    async def release(self, user_id: str, connection_id: str) -> None:
        """ZREM the connection."""
        await self._client.zrem(self.key(user_id), connection_id)

    async def _run(self, user_id: str, connection_id: str, *, cap: int, ttl: float) -> bool:
        ttl_ms = max(1, math.ceil(ttl * 1000))
        held = await self._script(
            keys=[self.key(user_id)], args=[connection_id, cap, ttl_ms], client=self._client
        )
        return bool(held)
