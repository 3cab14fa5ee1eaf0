"""Typing state in Redis, and the typing limiter.

One sorted set per conversation, ``chat:typing:{conv:<id>}``: member = user id, score = the
moment (Redis clock, ms) the user's typing expires, ``TTL["typing"]`` after their last frame. The
key itself expires with its last member, so an idle conversation leaves nothing behind. Scripts
read the clock with ``TIME`` on the node, so instances with skewed clocks agree.
"""

from __future__ import annotations

from shared.keys import KeySpace
from shared.ratelimit import RateLimiter
from shared.redis.client import AnyRedis
from shared.ttl import TtlRule

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
"""

# ARGV: user, ttl_ms. Returns 1 when the user was not typing.
_START = (
    _NOW
    + """
local fresh = redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if fresh then return 1 end
return 0
"""
)

# ARGV: user. Returns 1 when the user was typing.
_STOP = _NOW + "return redis.call('ZREM', KEYS[1], ARGV[1])"

_LIST = _NOW + "return redis.call('ZRANGE', KEYS[1], 0, -1)"


class RedisTyping:
    """The :class:`~chat.store.protocols.TypingStore` in Redis."""

    def __init__(self, client: AnyRedis, keyspace: KeySpace, *, rule: TtlRule) -> None:
        self._client = client
        self._keyspace = keyspace
        self._rule = rule
        self.ttl = rule.ttl
        self._start = client.register_script(_START)
        self._stop = client.register_script(_STOP)
        self._list = client.register_script(_LIST)

    def key(self, conversation_id: str) -> str:
        """``chat:typing:{conv:<id>}``."""
        return self._keyspace.key("typing", tag=f"conv:{conversation_id}")

    async def start(self, conversation_id: str, user_id: str) -> bool:
        """Mark typing until now + TTL; True when the user was not typing before."""
        fresh = await self._start(
            keys=[self.key(conversation_id)],
            args=[user_id, self._rule.sample_ms()],
            client=self._client,
        )
        return bool(fresh)

    async def stop(self, conversation_id: str, user_id: str) -> bool:
        """Clear typing; True when the user was typing."""
        gone = await self._stop(
            keys=[self.key(conversation_id)], args=[user_id], client=self._client
        )
        return bool(gone)

    async def typing(self, conversation_id: str) -> list[str]:
        """Members whose typing has not expired."""
        raw = await self._list(keys=[self.key(conversation_id)], args=[], client=self._client)
        return sorted(u.decode() if isinstance(u, bytes) else str(u) for u in raw)


class TypingThrottle:
    """The :class:`~chat.store.protocols.Throttle` of typing frames: GCRA per user."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def admit(self, subject: str) -> float | None:
        """None when admitted, else seconds to wait."""
        result = await self._limiter.check(subject)
        return None if result.allowed else (result.retry_after or 0.0)
