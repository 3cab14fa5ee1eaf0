"""Badge counters on the real cluster: a count read from the database never overwrites a change
made while it was being read (the interleavings of a reader and writers, forced one by one)."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from notification.store.redis_badges import RedisBadges
from notification.store.redis_keys import badge_key
from shared.redis.client import AnyRedis

pytestmark = pytest.mark.integration


def user() -> str:
    return f"u-{secrets.token_hex(6)}"


async def counter(redis: AnyRedis, user_id: str) -> int | None:
    raw = await redis.get(badge_key(user_id))
    return None if raw is None else int(raw)


async def test_a_read_counted_before_a_commit_is_not_kept_over_it(redis: AnyRedis) -> None:
    """The reader counts 0, a notification is created and committed, then the reader stores:
    its stale 0 must not become the counter (the writer's own count, 1, wins or nothing does)."""
    badges, alice = RedisBadges(redis), user()
    counted, go_on = asyncio.Event(), asyncio.Event()

    async def slow_count() -> int:
        counted.set()
        await go_on.wait()
        return 0  # the database before the writer's commit

    reader = asyncio.create_task(badges.get(alice, slow_count))
    await counted.wait()
    change = await badges.add({alice: 1})  # the writer, inside its transaction
    assert change.counts == {} and alice in change.versions
    go_on.set()  # the writer has committed; the reader stores what it counted before
    assert await reader == 0
    assert await counter(redis, alice) is None  # the stale count was not stored
    await badges.seed({alice: 1}, change.versions)  # the writer's count from its transaction
    assert await badges.get(alice, _never) == 1


async def test_a_read_stored_after_a_writers_delta_is_replaced_by_the_writers_count(
    redis: AnyRedis,
) -> None:
    """The writer's delta finds no counter, the reader counts before the writer's commit and
    stores; the writer's count (read in its transaction) then replaces it."""
    badges, alice = RedisBadges(redis), user()
    change = await badges.add({alice: 1})

    async def count_before_commit() -> int:
        return 0

    assert await badges.get(alice, count_before_commit) == 0  # stored: nothing moved since
    assert await counter(redis, alice) == 0
    await badges.seed({alice: 1}, change.versions)
    assert await counter(redis, alice) == 1


async def test_two_writers_that_found_no_counter_leave_none_rather_than_a_wrong_one(
    redis: AnyRedis,
) -> None:
    """Each counts only its own uncommitted notification (1 each, 2 in truth): whichever stores
    first, the counter ends missing or right, and the next read counts 2."""
    for first, second in ((0, 1), (1, 0)):
        badges, alice = RedisBadges(redis), user()
        changes = [await badges.add({alice: 1}), await badges.add({alice: 1})]
        await badges.seed({alice: 1}, changes[first].versions)
        await badges.seed({alice: 1}, changes[second].versions)
        assert await counter(redis, alice) in (None, 2)

        async def count_both() -> int:
            return 2

        assert await badges.get(alice, count_both) == 2


async def test_a_change_to_an_existing_counter_while_a_writer_counts_drops_the_writers_count(
    redis: AnyRedis,
) -> None:
    badges, alice = RedisBadges(redis), user()
    writer = await badges.add({alice: 1})  # no counter: the writer counts in its transaction

    async def zero() -> int:
        return 0

    await badges.get(alice, zero)  # a reader creates the counter meanwhile
    assert (await badges.add({alice: 1})).counts == {alice: 1}  # another notification
    await badges.seed({alice: 1}, writer.versions)  # would lose the other one's +1
    assert await counter(redis, alice) is None


async def test_a_writer_that_could_not_reach_redis_drops_the_counter_after_its_commit(
    redis: AnyRedis,
) -> None:
    """Its delta was not applied to the counter, so the counter is no longer exact."""
    badges, alice = RedisBadges(redis), user()

    async def three() -> int:
        return 3

    assert await badges.get(alice, three) == 3
    await badges.seed({alice: 4}, {})  # no version: the delta never reached Redis
    assert await counter(redis, alice) is None


async def test_deltas_apply_to_existing_counters_only_and_never_below_zero(
    redis: AnyRedis,
) -> None:
    badges, alice, bob = RedisBadges(redis), user(), user()

    async def one() -> int:
        return 1

    await badges.get(alice, one)
    change = await badges.add({alice: 2, bob: 1})
    assert change.counts == {alice: 3} and set(change.versions) == {bob}
    assert (await badges.add({alice: -10})).counts == {alice: 0}
    assert (await badges.add({alice: 0})).counts == {alice: 0}  # a zero delta reads it
    assert await counter(redis, bob) is None


async def _never() -> int:
    raise AssertionError("the counter should have been held")
