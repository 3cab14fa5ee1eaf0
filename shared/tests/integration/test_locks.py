"""The distributed lock against the real test cluster."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from parley.cluster import LocalCluster
from shared.keys import KeySpace, slot_of
from shared.locks import LockLost, LockNotAcquired, LockNotHeld, RedisLock
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = pytest.mark.integration

KS = KeySpace("locktest")


@pytest_asyncio.fixture(scope="module")
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


def fresh_name() -> str:
    return f"res-{secrets.token_hex(6)}"


async def test_contended_lock_is_held_by_one_task_at_a_time_with_increasing_fences(
    client: AnyRedis,
) -> None:
    name = fresh_name()
    holders = 0
    max_holders = 0
    fences: list[int] = []

    async def worker() -> None:
        nonlocal holders, max_holders
        async with RedisLock(client, KS, name, ttl=2.0, timeout=20.0, retry_max=0.02) as lock:
            holders += 1
            max_holders = max(max_holders, holders)
            fences.append(lock.fencing_token)
            await asyncio.sleep(0.005)
            holders -= 1

    await asyncio.gather(*(worker() for _ in range(25)))

    assert max_holders == 1
    assert len(fences) == 25
    assert all(a < b for a, b in itertools.pairwise(fences))


async def test_second_acquirer_times_out_while_the_lock_is_held(client: AnyRedis) -> None:
    name = fresh_name()
    async with RedisLock(client, KS, name, ttl=5.0):
        with pytest.raises(LockNotAcquired):
            await RedisLock(client, KS, name, timeout=0.2).acquire()


async def test_release_lets_the_next_holder_in_with_a_larger_fence(client: AnyRedis) -> None:
    name = fresh_name()
    first = RedisLock(client, KS, name, timeout=0)
    second = RedisLock(client, KS, name, timeout=0)
    token = await first.acquire()
    assert not await second.try_acquire()
    assert await first.release()
    assert await second.try_acquire()
    assert second.fencing_token > token


async def test_a_non_holder_can_neither_extend_nor_release(client: AnyRedis) -> None:
    name = fresh_name()
    stale = RedisLock(client, KS, name, ttl=0.1, timeout=0)
    await stale.acquire()
    await asyncio.sleep(0.2)  # the lease expires; someone else takes the lock
    current = RedisLock(client, KS, name, ttl=5.0, timeout=0)
    await current.acquire()

    with pytest.raises(LockNotHeld):
        await stale.extend()
    assert not await stale.release()
    # The current holder's lease is untouched by the stale object's attempts.
    assert await client.pttl(current.key) > 4000
    assert await current.release()


async def test_holder_is_cancelled_when_its_key_is_deleted(client: AnyRedis) -> None:
    name = fresh_name()
    reached_end = False
    lock = RedisLock(client, KS, name, ttl=0.3)

    async def hold() -> None:
        nonlocal reached_end
        async with lock:
            await client.delete(lock.key)
            await asyncio.sleep(5)
            reached_end = True

    with pytest.raises(LockLost):
        await hold()
    assert not reached_end
    assert lock.lost.is_set()


async def test_holder_is_cancelled_when_its_lease_expires(client: AnyRedis) -> None:
    name = fresh_name()
    lock = RedisLock(client, KS, name, ttl=0.3)

    async def hold() -> None:
        async with lock:
            await client.pexpire(lock.key, 1)
            await asyncio.sleep(5)

    with pytest.raises(LockLost):
        await hold()
    assert lock.lost.is_set()


async def test_holder_is_cancelled_when_renewal_cannot_reach_redis(
    client: AnyRedis, test_cluster: LocalCluster
) -> None:
    name = fresh_name()
    lock = RedisLock(client, KS, name, ttl=0.3)
    node = client.get_node_from_key(lock.key)  # type: ignore[union-attr]
    assert node is not None
    pid = test_cluster.pid(int(node.port))
    assert pid is not None
    loop = asyncio.get_running_loop()
    started = 0.0

    async def hold() -> None:
        nonlocal started
        async with lock:
            started = loop.time()
            # Freeze the master that holds the lease: renewals time out, the lease runs out.
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(5)
            finally:
                os.kill(pid, signal.SIGCONT)

    with pytest.raises(LockLost):
        await hold()
    # Cancelled once the local lease deadline passed, well before the sleep would have ended.
    assert loop.time() - started < 2.0


async def test_work_that_finishes_normally_keeps_its_result_and_frees_the_lock(
    client: AnyRedis,
) -> None:
    name = fresh_name()
    async with RedisLock(client, KS, name, ttl=0.3) as lock:
        await asyncio.sleep(0.5)  # longer than the ttl: renewal must keep the lease
        assert await client.get(lock.key) is not None
    assert await client.exists(lock.key) == 0


async def test_outside_cancellation_stays_a_cancellation(client: AnyRedis) -> None:
    name = fresh_name()
    entered = asyncio.Event()

    async def holder() -> None:
        async with RedisLock(client, KS, name, ttl=1.0):
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(holder())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await client.exists(KS.key("lock", tag=name)) == 0


def test_lock_and_fence_counter_share_a_slot() -> None:
    lock = KS.key("lock", tag="x")
    fence = KS.key("lock", tag="x", rest="fence")
    assert slot_of(lock) == slot_of(fence)
