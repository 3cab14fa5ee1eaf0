"""Rate limiting with GCRA (the generic cell rate algorithm) in one Lua script.

>>> limiter = RateLimiter(client, KeySpace("gateway"), "api", RateLimitPolicy(rate=10, period=1.0))
>>> result = await limiter.check(f"user:{user_id}")
>>> headers = rate_limit_headers(result)   # RateLimit-Limit, -Remaining, -Reset (+ Retry-After)

GCRA keeps one number per subject, the theoretical arrival time (TAT), so a check is O(1) in time
and memory whatever the rate. The script reads the clock with ``TIME`` on the Redis node, so
instances with skewed clocks agree, and each subject is one key, so it is cluster-safe by
construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from prometheus_client import Counter
from redis.commands.core import AsyncScript

from shared.keys import KeySpace
from shared.redis.client import AnyRedis

RATE_LIMIT_CHECKS: Final = Counter(
    "parley_ratelimit_checks_total",
    "Rate-limit checks, by limiter and result (allowed, rejected).",
    ["service", "limiter", "result"],
)

# KEYS: the subject's TAT. ARGV: emission interval (us), burst tolerance (us), cost.
# Returns {allowed (0/1), remaining, reset_after (us), retry_after (us, -1 if allowed)}.
_GCRA = """
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + emission * cost
local diff = now - (new_tat - tolerance)
if diff < 0 then
  local remaining = math.floor((now - (tat - tolerance)) / emission)
  if remaining < 0 then remaining = 0 end
  return {0, remaining, tat - now, -diff}
end
if cost > 0 then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
end
return {1, math.floor(diff / emission), new_tat - now, -1}
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


class RateLimiter:
    """A named GCRA limiter (e.g. ``"login"``) whose subjects are counted separately.

    Keys are ``<prefix>:ratelimit:{<name>:<subject>}``: one key per subject, spread over the
    cluster.
    """

    def __init__(
        self, client: AnyRedis, keyspace: KeySpace, name: str, policy: RateLimitPolicy
    ) -> None:
        self._client = client
        self._keyspace = keyspace
        self.name = name
        self.policy = policy
        self._script: AsyncScript = client.register_script(_GCRA)
        self._args = (policy.emission_us, policy.emission_us * policy.limit)
        self._allowed = RATE_LIMIT_CHECKS.labels(keyspace.prefix, name, "allowed")
        self._rejected = RATE_LIMIT_CHECKS.labels(keyspace.prefix, name, "rejected")

    def key(self, subject: str) -> str:
        """The Redis key holding ``subject``'s state."""
        return self._keyspace.key("ratelimit", tag=f"{self.name}:{subject}")

    async def check(self, subject: str, *, cost: int = 1) -> RateLimitResult:
        """Count ``cost`` requests of ``subject`` if they fit; ``cost=0`` only peeks."""
        if cost < 0:
            raise RateLimitError("cost must be >= 0")
        allowed, remaining, reset_us, retry_us = await self._script(
            keys=[self.key(subject)], args=[*self._args, cost], client=self._client
        )
        (self._allowed if allowed else self._rejected).inc()
        return RateLimitResult(
            allowed=bool(allowed),
            limit=self.policy.limit,
            remaining=int(remaining),
            reset_after=max(0, int(reset_us)) / 1_000_000,
            retry_after=None if allowed else int(retry_us) / 1_000_000,
            period=self.policy.period,
        )

    async def reset(self, subject: str) -> None:
        """Forget ``subject``'s history: its next check sees a full quota."""
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
