"""Unread badge counters in Redis, reconciled from the database.

Committed changes are applied as deltas, and only to counters that exist: a missing counter is
loaded from the database's exact count on the next read. Deltas commute, so concurrent handlers
for one user (messages from several conversations) keep it exact; a crash between a commit and
its delta leaves drift that lasts at most the counter's TTL (then it is reloaded).

A count read from the database is only right if no change committed while it was read, so it is
stored against a version: every change bumps ``notification:badgever:{user:<id>}`` (a delta
when it is applied, a writer's count when it is stored), a reader stores its count only if the
version it saw before counting is unchanged, and a writer that found the counter missing stores
the count of its own transaction only if no other change began or ended since its delta (else
it drops the counter, and the next read counts again).
"""

from __future__ import annotations

from redis.exceptions import RedisError

from notification.store.protocols import BadgeChange, BadgeLoader
from notification.store.redis_keys import TTL, badge_key, badge_version_key
from shared.redis.client import AnyRedis

# KEYS: counter, version. ARGV: delta, version TTL (ms). A non-zero delta bumps the version and
# applies to an existing counter only, never below zero. Answers {count (-1: missing), version}.
_ADD = """
local delta = tonumber(ARGV[1])
local version
if delta ~= 0 then
  version = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
else
  version = tonumber(redis.call('GET', KEYS[2]) or '0')
end
local current = redis.call('GET', KEYS[1])
if not current then return {-1, version} end
if delta == 0 then return {tonumber(current), version} end
local v = redis.call('INCRBY', KEYS[1], delta)
if v < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') v = 0 end
return {v, version}
"""

# A writer's count, after its commit. KEYS: counter, version. ARGV: count, the version its delta
# answered ('' when unknown), counter TTL (ms), version TTL (ms). Stored only if the version is
# unchanged, else the counter is dropped; either way the version moves on.
_SEED = """
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[2] ~= '' and seen == tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
else
  redis.call('DEL', KEYS[1])
end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0
"""

# A reader's count. KEYS: counter, version. ARGV: count, the version seen before counting,
# counter TTL (ms). Stored only if nothing changed since, and only where no counter is.
_FILL = """
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if seen ~= tonumber(ARGV[2]) then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3], 'NX') then return 1 end
return 0
"""


class RedisBadges:
    """Badge counters under ``notification:badge:{user:<id>}``, versioned beside them."""

    def __init__(self, client: AnyRedis) -> None:
        self._client = client
        for script in (_ADD, _SEED, _FILL):
            client.register_script(script)  # loaded once; EVAL below finds it cached

    async def add(self, deltas: dict[str, int]) -> BadgeChange:
        """Apply deltas to the counters that exist; their counts after it (zero: just read),
        and the versions of the missing ones."""
        if not deltas:
            return BadgeChange()
        users = list(deltas)
        ttl = TTL.ttl_ms("badge_version")
        async with self._client.pipeline(transaction=False) as pipe:
            for user_id in users:
                keys = (badge_key(user_id), badge_version_key(user_id))
                pipe.eval(_ADD, 2, *keys, deltas[user_id], ttl)
            answers = await pipe.execute()
        change = BadgeChange()
        for user_id, (count, version) in zip(users, answers, strict=True):
            if int(count) >= 0:
                change.counts[user_id] = int(count)
            else:
                change.versions[user_id] = int(version)
        return change

    async def get(self, user_id: str, load: BadgeLoader) -> int:
        """The counter, or the database count (stored for next time when nothing changed while
        it was counted) when it is missing."""
        key, version_key = badge_key(user_id), badge_version_key(user_id)
        try:
            raw, version = await self._client.mget(key, version_key)
        except RedisError:
            return await load()  # fail open: the database has the truth
        if raw is not None:
            return int(raw)
        count = await load()
        seen = int(version) if version is not None else 0
        await self._client.eval(_FILL, 2, key, version_key, count, seen, TTL.ttl_ms("badge"))
        return count

    async def seed(self, counts: dict[str, int], versions: dict[str, int]) -> None:
        """Store writers' counts where the version is still the one their delta answered."""
        if not counts:
            return
        ttl = TTL.ttl_ms("badge_version")
        async with self._client.pipeline(transaction=False) as pipe:
            for user_id, count in counts.items():
                version = versions.get(user_id)
                pipe.eval(
                    _SEED,
                    2,
                    badge_key(user_id),
                    badge_version_key(user_id),
                    count,
                    "" if version is None else version,
                    TTL.ttl_ms("badge"),
                    ttl,
                )
            await pipe.execute()

    async def reconcile(self, user_id: str, count: int) -> None:
        """Overwrite the counter with the database's exact count."""
        await self._client.set(badge_key(user_id), count, px=TTL.ttl_ms("badge"))
