"""Unread badge counters in Redis, reconciled from the database.

Committed changes are applied as deltas, and only to counters that exist: a missing counter is
loaded from the database's exact count on the next read. Deltas commute, so concurrent handlers
for one user (messages from several conversations) keep it exact; a crash between a commit and
its delta leaves drift that lasts at most the counter's TTL (then it is reloaded).
"""

from __future__ import annotations

from redis.exceptions import RedisError

from notification.store.protocols import BadgeLoader
from notification.store.redis_keys import TTL, badge_key
from shared.redis.client import AnyRedis

# Apply a delta only to an existing counter, never below zero; answer the count (-1: missing).
_ADD_IF_PRESENT = """
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
if tonumber(ARGV[1]) == 0 then return tonumber(current) end
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') v = 0 end
return v
"""


class RedisBadges:
    """Badge counters under ``notification:badge:{user:<id>}``."""

    def __init__(self, client: AnyRedis) -> None:
        self._client = client
        self._add = client.register_script(_ADD_IF_PRESENT)

    async def add(self, deltas: dict[str, int]) -> dict[str, int]:
        """Apply deltas to the counters that exist; their counts after it (zero: just read)."""
        if not deltas:
            return {}
        users = list(deltas)
        async with self._client.pipeline(transaction=False) as pipe:
            for user_id in users:
                pipe.eval(_ADD_IF_PRESENT, 1, badge_key(user_id), deltas[user_id])
            counts = await pipe.execute()
        return {u: int(c) for u, c in zip(users, counts, strict=True) if int(c) >= 0}

    async def get(self, user_id: str, load: BadgeLoader) -> int:
        """The counter, or the database count (stored for next time) when it is missing."""
        try:
            raw = await self._client.get(badge_key(user_id))
        except RedisError:
            return await load()  # fail open: the database has the truth
        if raw is not None:
            return int(raw)
        count = await load()
        await self._client.set(badge_key(user_id), count, px=TTL.ttl_ms("badge"), nx=True)
        return count

    async def seed(self, counts: dict[str, int]) -> None:
        """Create the missing counters with the database's counts (existing ones stay)."""
        if not counts:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for user_id, count in counts.items():
                pipe.set(badge_key(user_id), count, px=TTL.ttl_ms("badge"), nx=True)
            await pipe.execute()

    async def reconcile(self, user_id: str, count: int) -> None:
        """Overwrite the counter with the database's exact count."""
        await self._client.set(badge_key(user_id), count, px=TTL.ttl_ms("badge"))
