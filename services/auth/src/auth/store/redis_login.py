"""Password-check budgets and growing lockouts, in Redis, reserved atomically.

Keys of one username share its slot (``{login:<username>}``), so one script checks and counts them
together: ``auth:login:{login:<u>}:pair:<address>`` (failures of the pair in the window),
``...:lock:<address>`` (present while the pair is locked out; its TTL is the lockout),
``...:strikes:<address>`` (lockouts of the pair in the strike memory), ``...:user`` (failures of
the username from anywhere) and ``...:pace`` (present while the slowed-down username waits).
The per-address budget over all usernames is a GCRA limiter, ``auth:ratelimit:{login-address:<a>}``.
"""

from __future__ import annotations

from auth.domain.lockout import LockoutPolicy
from auth.store.protocols import Throttle
from shared.keys import KeySpace, same_slot
from shared.ratelimit import RateLimiter, RateLimitPolicy
from shared.redis.client import AnyRedis

# Check and count in one step: a check runs only with a failure reserved, so N parallel attempts
# can never run more checks than the budget has left.
# KEYS: pair, lock, user, pace. ARGV: pair threshold, window ms, user threshold, slowdown ms.
# Returns {1, 0} (reserved) or {0, retry after ms}.
_RESERVE = """
local locked = redis.call('PTTL', KEYS[2])
if locked > 0 then return {0, locked} end
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  return {0, math.max(1000, redis.call('PTTL', KEYS[1]))}
end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[3]) then
  local wait = redis.call('PTTL', KEYS[4])
  if wait > 0 then return {0, wait} end
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('INCR', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return {1, 0}
"""

# A success gives the reservation back and clears the pair's budget; a failure that spent the
# pair's budget starts its next lockout (ARGV[5..] are the lockouts of strike 1, 2, ... in ms).
# A lockout shorter than the window leaves the pair one guess after it: failing that starts the
# next, longer lockout; after a window without failures the budget is whole again.
# KEYS: pair, lock, strikes, user. ARGV: ok, pair threshold, strike memory ms, window ms,
# lockouts ms...
# Returns the lockout started (ms), 0 for none.
_SETTLE = """
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1])
  if redis.call('DECR', KEYS[4]) <= 0 then redis.call('DEL', KEYS[4]) end
  return 0
end
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[2]) then return 0 end
if redis.call('PTTL', KEYS[2]) > 0 then return redis.call('PTTL', KEYS[2]) end
local strikes = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
local ms = tonumber(ARGV[4 + math.min(strikes, #ARGV - 4)])
redis.call('SET', KEYS[2], strikes, 'PX', ms)
redis.call('SET', KEYS[1], tonumber(ARGV[2]) - 1, 'PX', ARGV[4])
return ms
"""

_LOCKOUT_STEPS = 33  # lockout_for caps its exponent at 32: later strikes equal the last step
_UNKNOWN = "-"  # the pair of a check whose address the caller did not know


class RedisLoginGuard:
    """Per-(username, address) budgets with growing lockouts, a per-username slow-down and a
    per-address budget over all usernames."""

    def __init__(self, client: AnyRedis, keyspace: KeySpace, policy: LockoutPolicy) -> None:
        self._client = client
        self._keyspace = keyspace
        self.policy = policy
        self._addresses = RateLimiter(
            client,
            keyspace,
            "login-address",
            RateLimitPolicy(policy.address_threshold, policy.window),
        )
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._lockouts = [
            max(1, int(policy.lockout_for(strike) * 1000))
            for strike in range(1, _LOCKOUT_STEPS + 1)
        ]

    def _keys(self, username_key: str, address: str | None) -> dict[str, str]:
        tag, pair = f"login:{username_key}", address or _UNKNOWN
        keys = {
            name: self._keyspace.key("login", tag=tag, rest=rest)
            for name, rest in (
                ("pair", f"pair:{pair}"),
                ("lock", f"lock:{pair}"),
                ("strikes", f"strikes:{pair}"),
                ("user", "user"),
                ("pace", "pace"),
            )
        }
        same_slot(*keys.values())
        return keys

    async def reserve(self, username_key: str, address: str | None) -> Throttle:
        """Refuse while the pair is locked out, its budget is spent (or reserved by checks in
        flight), the slowed-down username must wait, or the address's budget is spent."""
        if address:
            peek = await self._addresses.check(address, cost=0)
            if not peek.allowed:
                return Throttle(allowed=False, retry_after=peek.retry_after or 1.0)
        k = self._keys(username_key, address)
        p = self.policy
        reserved, wait_ms = await self._reserve(
            keys=[k["pair"], k["lock"], k["user"], k["pace"]],
            args=[p.threshold, int(p.window * 1000), p.user_threshold, int(p.slowdown * 1000)],
        )
        if int(reserved) != 1:
            return Throttle(allowed=False, retry_after=max(0.001, int(wait_ms) / 1000))
        return Throttle(allowed=True)

    async def settle(self, username_key: str, address: str | None, *, ok: bool) -> Throttle:
        """Give the reservation back on success; on failure, lock the pair out when its budget
        is spent, and count the failure against the address."""
        k = self._keys(username_key, address)
        lockout_ms = int(
            await self._settle(
                keys=[k["pair"], k["lock"], k["strikes"], k["user"]],
                args=[
                    1 if ok else 0,
                    self.policy.threshold,
                    int(self.policy.strike_memory * 1000),
                    int(self.policy.window * 1000),
                    *self._lockouts,
                ],
            )
        )
        if ok:
            return Throttle(allowed=True)
        by_address = await self._addresses.check(address) if address else None
        if lockout_ms > 0:
            return Throttle(allowed=False, retry_after=lockout_ms / 1000)
        if by_address is not None and not by_address.allowed:
            return Throttle(allowed=False, retry_after=by_address.retry_after or 1.0)
        return Throttle(allowed=True)
