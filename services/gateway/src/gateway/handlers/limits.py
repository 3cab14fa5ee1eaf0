"""API rate limits per user and per client address (GCRA via :mod:`shared.ratelimit`).

Every API request is counted against its client address; an authenticated one also against its
user. A REST request costs 1; a GraphQL request costs what its query is worth
(:func:`gateway.api.graphql_limits.request_charge`), so both APIs spend the same budgets.
Registration, login and refresh count against a stricter per-address budget, since they are what
credential stuffing targets. The answer carries the ``RateLimit-*`` headers of the tightest
budget; a refusal raises ``GatewayError("rate_limited")`` with ``retry_after``.

The per-user and per-address budgets are checked with leases (:mod:`shared.ratelimit`): an
admitted check may reserve up to ``API_LEASE`` further requests of the subject, which this process
then admits without a Redis round trip. Each admitted request is still counted in Redis, so no
budget is exceeded across gateways; the credential budget, small and targeted, is counted one by
one.

Limits fail open: when Redis cannot answer, the request goes on (counted in the log) rather than
the whole API failing with it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from gateway.domain import errors
from gateway.domain.errors import GatewayError
from shared.breaker import CircuitOpenError
from shared.keys import KeySpace
from shared.ratelimit import RateLimiter, RateLimitPolicy, RateLimitResult, rate_limit_headers
from shared.redis.client import AnyRedis

log = logging.getLogger(__name__)


class RateLimitedError(GatewayError):
    """A budget is spent; ``headers`` are the ``RateLimit-*`` and ``Retry-After`` to send."""

    def __init__(self, result: RateLimitResult) -> None:
        super().__init__(
            errors.RATE_LIMITED, "too many requests; retry later", retry_after=result.retry_after
        )
        self.headers = rate_limit_headers(result)


@dataclass(frozen=True, slots=True)
class LimitPolicies:
    """The three budgets (requests per period, burst)."""

    user: RateLimitPolicy
    address: RateLimitPolicy
    auth: RateLimitPolicy


API_LEASE = 32
"""Most further requests one check of a user's or an address's budget reserves."""


class ApiLimits:
    """The gateway's API limiters."""

    def __init__(self, client: AnyRedis, keyspace: KeySpace, policies: LimitPolicies) -> None:
        self.user = RateLimiter(client, keyspace, "api-user", policies.user, lease=API_LEASE)
        self.address = RateLimiter(client, keyspace, "api-addr", policies.address, lease=API_LEASE)
        self.auth = RateLimiter(client, keyspace, "api-auth", policies.auth)

    async def check(
        self, *, user_id: str | None, address: str | None, auth: bool = False, cost: int = 1
    ) -> dict[str, str]:
        """Count a request worth ``cost`` requests; the headers of the tightest budget, or
        :class:`RateLimitedError`.

        A cost above a budget's burst is charged as the whole burst (a request priced beyond
        what a full quota holds would otherwise be refused forever): it waits for a full quota.
        """
        checks: list[tuple[RateLimiter, str]] = []
        if address:
            checks.append((self.auth if auth else self.address, address))
        if user_id:
            checks.append((self.user, user_id))
        # Checked together (one round trip of latency, not two); each budget counts the request.
        outcomes = await asyncio.gather(
            *(
                limiter.check(subject, cost=min(cost, limiter.policy.limit))
                for limiter, subject in checks
            ),
            return_exceptions=True,
        )
        results: list[RateLimitResult] = []
        for (limiter, _), outcome in zip(checks, outcomes, strict=True):
            if isinstance(outcome, RedisError):
                if isinstance(outcome, CircuitOpenError):
                    continue  # its breaker logged the outage once; not once per request
                log.warning(
                    "rate limiter %s unavailable, letting the request through: %s",
                    limiter.name,
                    outcome,
                )
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            results.append(outcome)
        for result in results:
            if not result.allowed:
                raise RateLimitedError(result)
        if not results:
            return {}
        tightest = min(results, key=lambda r: r.remaining / max(r.limit, 1))
        return rate_limit_headers(tightest)
