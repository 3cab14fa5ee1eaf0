"""Failed-login budgets (GCRA, shared.ratelimit) and growing lockouts, in Redis.

Keys: ``auth:ratelimit:{login-user:<username>}`` and ``auth:ratelimit:{login-address:<address>}``
(the limiters' state), ``auth:lockout:{login:<username>}`` (present while locked out; its TTL is
the lockout) and ``auth:lockout:{login:<username>}:strikes`` (how many lockouts in the memory).
"""

from __future__ import annotations

from auth.domain.lockout import LockoutPolicy
from auth.store.protocols import Throttle
from shared.keys import KeySpace, same_slot
from shared.ratelimit import RateLimiter, RateLimitPolicy
from shared.redis.client import AnyRedis

# One round trip: count the strike and remember strikes for a while (the lockout grows with them).
# KEYS: lock, strikes. ARGV: strike memory (ms). Returns the strike count.
_STRIKE = """
local strikes = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return strikes
"""


class RedisLoginGuard:
    """Per-username and per-address failure budgets with a growing per-username lockout."""

    def __init__(self, client: AnyRedis, keyspace: KeySpace, policy: LockoutPolicy) -> None:
        self._client = client
        self._keyspace = keyspace
        self.policy = policy
        self._users = RateLimiter(
            client, keyspace, "login-user", RateLimitPolicy(policy.threshold, policy.window)
        )
        self._addresses = RateLimiter(
            client,
            keyspace,
            "login-address",
            RateLimitPolicy(policy.address_threshold, policy.window),
        )
        self._strike = client.register_script(_STRIKE)

    def _lock_keys(self, username_key: str) -> tuple[str, str]:
        lock = self._keyspace.key("lockout", tag=f"login:{username_key}")
        strikes = self._keyspace.key("lockout", tag=f"login:{username_key}", rest="strikes")
        same_slot(lock, strikes)
        return lock, strikes

    async def check(self, username_key: str, address: str | None) -> Throttle:
        """Refuse while the username is locked out or the address's budget is spent."""
        lock, _ = self._lock_keys(username_key)
        remaining_ms = int(await self._client.pttl(lock))
        if remaining_ms > 0:
            return Throttle(allowed=False, retry_after=remaining_ms / 1000)
        if address:
            peek = await self._addresses.check(address, cost=0)
            if not peek.allowed:
                return Throttle(allowed=False, retry_after=peek.retry_after or 1.0)
        return Throttle(allowed=True)

    async def failed(self, username_key: str, address: str | None) -> Throttle:
        """Count one failure; the failure that spends the username's budget starts a lockout."""
        user = await self._users.check(username_key)
        if address:
            by_address = await self._addresses.check(address)
        if not user.allowed or user.remaining == 0:
            return Throttle(allowed=False, retry_after=await self._lock_out(username_key))
        if address and not by_address.allowed:
            return Throttle(allowed=False, retry_after=by_address.retry_after or 1.0)
        return Throttle(allowed=True)

    async def succeeded(self, username_key: str) -> None:
        """A successful login clears the username's failure budget (strikes are remembered)."""
        await self._users.reset(username_key)

    async def _lock_out(self, username_key: str) -> float:
        lock, strikes_key = self._lock_keys(username_key)
        memory_ms = int(self.policy.strike_memory * 1000)
        strikes = int(await self._strike(keys=[lock, strikes_key], args=[memory_ms]))
        seconds = self.policy.lockout_for(strikes)
        await self._client.set(lock, str(strikes), px=max(1, int(seconds * 1000)))
        return seconds
