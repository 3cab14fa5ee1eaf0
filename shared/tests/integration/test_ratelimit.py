"""The GCRA rate limiter against the real test cluster."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shared.keys import KeySpace
from shared.ratelimit import RateLimiter, RateLimitPolicy
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = pytest.mark.integration

KS = KeySpace("ratetest")


@pytest_asyncio.fixture(scope="module")
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


def subject() -> str:
    return f"subject-{secrets.token_hex(6)}"


async def test_admits_burst_plus_rate_times_elapsed_within_two_requests(client: AnyRedis) -> None:
    policy = RateLimitPolicy(rate=50, period=1.0, burst=10)
    limiter = RateLimiter(client, KS, "window", policy)
    who = subject()
    loop = asyncio.get_running_loop()
    admitted = 0
    starts: list[float] = []
    ends: list[float] = []

    async def hammer(until: float) -> None:
        nonlocal admitted
        while loop.time() < until:
            starts.append(loop.time())
            if (await limiter.check(who)).allowed:
                admitted += 1
            ends.append(loop.time())

    started = loop.time()
    await asyncio.gather(*(hammer(started + 1.2) for _ in range(4)))

    # Redis decides each check at some instant between its send and its answer, so the window it
    # saw lies between (last send - first answer) and (last answer - first send), however slow
    # the round trips of a loaded machine are.
    shortest = max(starts) - min(ends)
    longest = max(ends) - min(starts)
    low = policy.limit + policy.rate * shortest / policy.period
    high = policy.limit + policy.rate * longest / policy.period
    assert low - 2 <= admitted <= high + 1


async def test_a_fresh_subject_gets_the_burst_at_once_then_is_told_when_to_retry(
    client: AnyRedis,
) -> None:
    limiter = RateLimiter(client, KS, "burst", RateLimitPolicy(rate=5, period=1.0, burst=3))
    who = subject()

    results = [await limiter.check(who) for _ in range(4)]

    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results[:3]] == [2, 1, 0]
    rejected = results[3]
    assert rejected.remaining == 0
    # The next slot opens one emission interval (200 ms) after the first request.
    assert rejected.retry_after is not None
    assert 0.15 < rejected.retry_after <= 0.2
    # The quota is full again after three emission intervals.
    assert 0.55 < rejected.reset_after <= 0.6


async def test_retry_after_is_exactly_when_the_request_is_admitted(client: AnyRedis) -> None:
    limiter = RateLimiter(client, KS, "retry", RateLimitPolicy(rate=4, period=1.0, burst=1))
    who = subject()
    assert (await limiter.check(who)).allowed
    rejected = await limiter.check(who)
    assert not rejected.allowed
    assert rejected.retry_after is not None

    await asyncio.sleep(rejected.retry_after / 2)
    assert not (await limiter.check(who)).allowed
    still = await limiter.check(who)
    assert still.retry_after is not None
    await asyncio.sleep(still.retry_after + 0.01)
    assert (await limiter.check(who)).allowed


async def test_rejections_do_not_consume_quota(client: AnyRedis) -> None:
    limiter = RateLimiter(client, KS, "noconsume", RateLimitPolicy(rate=5, period=1.0, burst=1))
    who = subject()
    first = await limiter.check(who)
    for _ in range(20):
        assert not (await limiter.check(who)).allowed
    again = await limiter.check(who)
    assert again.retry_after is not None
    assert again.retry_after <= first.reset_after


async def test_subjects_are_limited_separately_and_reset_restores_the_quota(
    client: AnyRedis,
) -> None:
    limiter = RateLimiter(client, KS, "separate", RateLimitPolicy(rate=1, period=60.0))
    alice, bob = subject(), subject()
    assert (await limiter.check(alice)).allowed
    assert not (await limiter.check(alice)).allowed
    assert (await limiter.check(bob)).allowed

    await limiter.reset(alice)
    assert (await limiter.check(alice)).allowed


async def test_a_costly_request_needs_that_much_quota(client: AnyRedis) -> None:
    limiter = RateLimiter(client, KS, "cost", RateLimitPolicy(rate=10, period=60.0))
    who = subject()
    assert (await limiter.check(who, cost=8)).remaining == 2
    too_big = await limiter.check(who, cost=3)
    assert not too_big.allowed
    assert too_big.remaining == 2
    assert (await limiter.check(who, cost=2)).allowed


async def test_peeking_with_cost_zero_changes_nothing(client: AnyRedis) -> None:
    limiter = RateLimiter(client, KS, "peek", RateLimitPolicy(rate=3, period=60.0))
    who = subject()
    await limiter.check(who)
    for _ in range(5):
        assert (await limiter.check(who, cost=0)).remaining == 2


async def test_state_expires_once_the_quota_is_full_again(client: AnyRedis) -> None:
    limiter = RateLimiter(client, KS, "expiry", RateLimitPolicy(rate=10, period=1.0))
    who = subject()
    result = await limiter.check(who)
    ttl_ms = await client.pttl(limiter.key(who))
    assert 0 < ttl_ms <= result.reset_after * 1000 + 1


async def test_leases_never_admit_more_than_the_budget_across_instances(client: AnyRedis) -> None:
    # A slow sustained rate: the budget is the burst alone within the test.
    policy = RateLimitPolicy(rate=1, period=60.0, burst=40)
    instances = [RateLimiter(client, KS, "leased", policy, lease=8) for _ in range(3)]
    who = subject()
    outcomes = [(await instances[i % 3].check(who)).allowed for i in range(90)]
    assert sum(outcomes) == 40
    # The last requests of a budget are counted one by one: no lease keeps what is left.
    assert all(not ok for ok in outcomes[60:])


async def test_a_lease_admits_from_memory_and_reports_what_the_budget_holds(
    client: AnyRedis,
) -> None:
    policy = RateLimitPolicy(rate=1, period=60.0, burst=100)
    limiter = RateLimiter(client, KS, "leased", policy, lease=10)
    plain = RateLimiter(client, KS, "leased", policy)
    who = subject()
    first = await limiter.check(who)
    assert first.allowed and first.remaining == 99
    # Redis counted the request and the ten reserved with it.
    assert (await plain.check(who, cost=0)).remaining == 89
    remaining = [(await limiter.check(who)).remaining for _ in range(10)]
    assert remaining == list(range(98, 88, -1))
    assert (await plain.check(who, cost=0)).remaining == 89  # all ten from the lease


async def test_an_ended_lease_gives_back_what_it_did_not_use(client: AnyRedis) -> None:
    policy = RateLimitPolicy(rate=1, period=60.0, burst=100)
    limiter = RateLimiter(client, KS, "leased", policy, lease=20, lease_seconds=0.2)
    plain = RateLimiter(client, KS, "leased", policy)
    who = subject()
    await limiter.check(who)
    assert (await plain.check(who, cost=0)).remaining == 79
    await asyncio.sleep(0.3)
    second = await limiter.check(who)
    # The first lease's 20 came back with this check, which took one and leased 20 again.
    assert second.remaining == 98
    assert (await plain.check(who, cost=0)).remaining == 78


async def test_concurrent_checks_keep_every_request_they_reserved(client: AnyRedis) -> None:
    policy = RateLimitPolicy(rate=1, period=60.0, burst=40)
    limiter = RateLimiter(client, KS, "leased", policy, lease=8)
    who = subject()
    # Checks in flight together each reserve a lease; none may be dropped (it would be lost to
    # the subject until it expired), so the whole budget is still admitted.
    first = await asyncio.gather(*(limiter.check(who) for _ in range(5)))
    rest = [await limiter.check(who) for _ in range(45)]
    assert sum(r.allowed for r in [*first, *rest]) == 40
