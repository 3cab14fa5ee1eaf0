"""Rate limiting with GCRA (the generic cell rate algorithm) in one Lua script.

>>> limiter = RateLimiter(client, KeySpace("gateway"), "api", RateLimitPolicy(rate=10, period=1.0))
>>> result = await limiter.check(f"user:{user_id}")
>>> headers = rate_limit_headers(result)   # RateLimit-Limit, -Remaining, -Reset (+ Retry-After)

GCRA keeps one number per subject, the theoretical arrival time (TAT), so a check is O(1) in time
and memory whatever the rate. The script reads the clock with ``TIME`` on the Redis node, so
instances with skewed clocks agree, and each subject is one key, so it is cluster-safe by
construction.

With ``lease`` > 0 a check that is admitted may also reserve up to ``lease`` further requests
of the subject (never more than a quarter of what the budget still holds), which the process then
admits from memory, without a round trip, for up to ``lease_seconds``. Every request admitted is
still counted in Redis (reserved first), so the budget is never exceeded, across instances too;
what a lease still holds when it ends is given back in the subject's next check (same call).
The cost: while one instance holds part of a budget, another may refuse a request the budget
would have admitted (at most a quarter of the remainder per instance), and a lease's
``RateLimit-Remaining`` does not grow back with time until its next check. A budget with fewer than
five requests left reserves nothing, so its last requests are counted one by one as without a
lease.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Final

from cachetools import LRUCache
from prometheus_client import Counter
from redis.commands.core import AsyncScript

from shared.keys import KeySpace
from shared.redis.client import AnyRedis

RATE_LIMIT_CHECKS: Final = Counter(
    "parley_ratelimit_checks_total",
    "Rate-limit checks, by limiter and result (allowed, rejected).",
    ["service", "limiter", "result"],
)

# KEYS: the subject's TAT. ARGV: emission interval (us), burst tolerance (us), cost, most extra
# requests to reserve (a lease), unused requests of an earlier lease to give back.
# Returns {allowed (0/1), remaining, reset_after (us), retry_after (us, -1 if allowed), extra}.
_GCRA = """
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local most = tonumber(ARGV[4])
local refund = tonumber(ARGV[5])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat and refund > 0 then tat = tat - emission * refund end
if not tat or tat < now then tat = now end
local new_tat = tat + emission * cost
local diff = now - (new_tat - tolerance)
if diff < 0 then
  if refund > 0 then
    if tat > now then
      redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
    else
      redis.call('DEL', KEYS[1])
    end
  end
  local remaining = math.floor((now - (tat - tolerance)) / emission)
  if remaining < 0 then remaining = 0 end
  return {0, remaining, tat - now, -diff, 0}
end
local slack = math.floor(diff / emission)
local extra = 0
if cost > 0 and most > 0 then
  extra = math.min(most, math.floor(slack / 4))
  new_tat = new_tat + emission * extra
end
if cost > 0 or refund > 0 then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
end
return {1, slack - extra, new_tat - now, -1, extra}
"""


class RateLimitError(Exception):
    """Root of the rate-limit errors."""


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """``rate`` requests per ``period`` seconds, up to ``burst`` at once (default: ``rate``)."""

    rate: int
    period: float = 1.0
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.rate < 1 or self.period <= 0:
            raise RateLimitError("rate must be >= 1 and period > 0")
        if self.burst is not None and self.burst < 1:
            raise RateLimitError("burst must be >= 1")

    @property
    def limit(self) -> int:
        """The most requests a full quota admits at once (the ``RateLimit-Limit`` value)."""
        return self.rate if self.burst is None else self.burst

    @property
    def emission_us(self) -> int:
        """Microseconds between two requests at the sustained rate."""
        return max(1, round(self.period * 1_000_000 / self.rate))


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """The outcome of one check; times are seconds from the check (Redis clock)."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    """Until the quota is full again."""
    retry_after: float | None
    """Until this request would be admitted; ``None`` when it was."""
    period: float


class _Lease:
    """Requests of one subject reserved in Redis and not admitted yet."""

    __slots__ = ("emission", "expires", "remaining", "reset_us", "taken", "tokens")

    def __init__(self, tokens: int, remaining: int, reset_us: int, emission: int, ttl: float):
        self.tokens = tokens
        self.remaining = remaining  # what the budget held besides this lease when it was taken
        self.reset_us = reset_us
        self.emission = emission
        self.taken = time.monotonic()
        self.expires = self.taken + ttl

    def reset_after(self, now: float) -> float:
        """Seconds until the quota is full again, were the lease's tokens given back."""
        left = (self.reset_us - self.tokens * self.emission) / 1_000_000 - (now - self.taken)
        return max(0.0, left)


class RateLimiter:
    """A named GCRA limiter (e.g. ``"login"``) whose subjects are counted separately.

    Keys are ``<prefix>:ratelimit:{<name>:<subject>}``: one key per subject, spread over the
    cluster. ``lease`` > 0 lets a check reserve up to that many further requests for this
    process (see the module's docstring); ``lease_subjects`` bounds the subjects remembered.
    """

    def __init__(
        self,
        client: AnyRedis,
        keyspace: KeySpace,
        name: str,
        policy: RateLimitPolicy,
        *,
        lease: int = 0,
        lease_seconds: float = 5.0,
        lease_subjects: int = 100_000,
    ) -> None:
        if lease < 0 or lease_seconds <= 0:
            raise RateLimitError("lease must be >= 0 and lease_seconds > 0")
        self._client = client
        self._keyspace = keyspace
        self.name = name
        self.policy = policy
        self._script: AsyncScript = client.register_script(_GCRA)
        self._args = (policy.emission_us, policy.emission_us * policy.limit)
        self._lease = lease
        self._lease_seconds = lease_seconds
        self._leases: LRUCache[str, _Lease] = LRUCache(max(1, lease_subjects))
        self._allowed = RATE_LIMIT_CHECKS.labels(keyspace.prefix, name, "allowed")
        self._rejected = RATE_LIMIT_CHECKS.labels(keyspace.prefix, name, "rejected")

    def key(self, subject: str) -> str:
        """The Redis key holding ``subject``'s state."""
        return self._keyspace.key("ratelimit", tag=f"{self.name}:{subject}")

    async def check(self, subject: str, *, cost: int = 1) -> RateLimitResult:
        """Count ``cost`` requests of ``subject`` if they fit; ``cost=0`` only peeks."""
        if cost < 0:
            raise RateLimitError("cost must be >= 0")
        refund = 0
        if self._lease and cost > 0:
            held = self._leases.get(subject)
            if held is not None:
                now = time.monotonic()
                if now < held.expires and held.tokens >= cost:
                    held.tokens -= cost
                    self._allowed.inc()
                    return RateLimitResult(
                        allowed=True,
                        limit=self.policy.limit,
                        remaining=held.remaining + held.tokens,
                        reset_after=held.reset_after(now),
                        retry_after=None,
                        period=self.policy.period,
                    )
                refund = held.tokens
                del self._leases[subject]
        allowed, remaining, reset_us, retry_us, extra = await self._script(
            keys=[self.key(subject)],
            args=[*self._args, cost, self._lease if cost > 0 else 0, refund],
            client=self._client,
        )
        if extra:
            lease = _Lease(
                int(extra),
                int(remaining),
                int(reset_us),
                self.policy.emission_us,
                self._lease_seconds,
            )
            held = self._leases.get(subject)
            if held is not None:  # concurrent checks each took one: one lease holds both
                lease.tokens += held.tokens
            self._leases[subject] = lease
        (self._allowed if allowed else self._rejected).inc()
        return RateLimitResult(
            allowed=bool(allowed),
            limit=self.policy.limit,
            remaining=int(remaining) + int(extra),
            reset_after=max(0, int(reset_us) - int(extra) * self.policy.emission_us) / 1_000_000,
            retry_after=None if allowed else int(retry_us) / 1_000_000,
            period=self.policy.period,
        )

    async def reset(self, subject: str) -> None:
        """Forget ``subject``'s history: its next check sees a full quota."""
        self._leases.pop(subject, None)
        await self._client.delete(self.key(subject))


def rate_limit_headers(result: RateLimitResult) -> dict[str, str]:
    """HTTP headers for ``result`` after draft-ietf-httpapi-ratelimit-headers.

    ``RateLimit-Limit``/``-Remaining``/``-Reset`` (delta seconds, rounded up) and
    ``RateLimit-Policy`` always; ``Retry-After`` (delta seconds, rounded up, at least 1) only on
    a rejection.
    """
    headers = {
        "RateLimit-Limit": str(result.limit),
        "RateLimit-Remaining": str(result.remaining),
        "RateLimit-Reset": str(math.ceil(result.reset_after)),
        "RateLimit-Policy": f"{result.limit};w={_seconds(result.period)}",
    }
    if result.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(result.retry_after)))
    return headers


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


__all__ = [
    "RateLimitError",
    "RateLimitPolicy",
    "RateLimitResult",
    "RateLimiter",
    "rate_limit_headers",
]
