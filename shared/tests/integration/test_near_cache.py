"""The near-cache: in-process hits, kept coherent across instances by pub/sub invalidations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import pytest

from shared.cache import Cache, InvalidationBus
from shared.keys import KeySpace
from shared.pubsub import PubSub
from shared.redis.client import RedisSettings, create_client
from shared.ttl import TtlRule

pytestmark = pytest.mark.integration

RULE = TtlRule(ttl=60, jitter=0.1)


class Profile(msgspec.Struct, frozen=True):
    user_id: str
    name: str


Instance = tuple[Cache[Profile], Cache[Profile]]


@pytest.fixture
async def instances(redis_url: str) -> AsyncIterator[Instance]:
    """Two instances of one service: own clients, own buses, own near-caches."""
    keyspace = KeySpace(f"t{uuid.uuid4().hex[:8]}")
    clients = [await create_client(RedisSettings(url=redis_url)) for _ in range(2)]
    buses = [InvalidationBus(PubSub(c), keyspace) for c in clients]
    for bus in buses:
        await bus.start()
    caches = [
        Cache(c, keyspace, "profile", Profile, rule=RULE, bus=b, near_size=100)
        for c, b in zip(clients, buses, strict=True)
    ]
    yield caches[0], caches[1]
    for bus in buses:
        await bus.aclose()
    for c in clients:
        await c.aclose()


def returning(value: Profile) -> Callable[[], Awaitable[Profile | None]]:
    async def load() -> Profile | None:
        return value

    return load


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(3):
        while not await check():  # noqa: ASYNC110 - polling another instance's view
            await asyncio.sleep(0.02)


async def test_a_near_hit_needs_no_redis(instances: Instance, redis_url: str) -> None:
    a, _ = instances
    await a.get_or_load("u1", returning(Profile("u1", "Ada")))
    await a.client.delete(a.key("u1", 0))  # behind the cache's back: only the near copy is left
    assert await a.get_or_load("u1", returning(Profile("u1", "Other"))) == Profile("u1", "Ada")


async def test_a_write_on_one_instance_evicts_the_near_copy_on_another(
    instances: Instance,
) -> None:
    a, b = instances
    await b.get_or_load("u1", returning(Profile("u1", "Ada")))
    await a.set("u1", Profile("u1", "Ada Lovelace"))

    async def b_sees_the_write() -> bool:
        got = await b.get_or_load("u1", returning(Profile("u1", "loader")))
        return got == Profile("u1", "Ada Lovelace")

    await eventually(b_sees_the_write)


async def test_a_tag_invalidation_on_one_instance_reaches_another(instances: Instance) -> None:
    a, b = instances
    await b.get_or_load("u1", returning(Profile("u1", "old")), tags=["user:u1"])
    await a.invalidate_tag("user:u1")

    async def b_reloads() -> bool:
        return await b.get_or_load("u1", returning(Profile("u1", "new"))) == Profile("u1", "new")

    await eventually(b_reloads)


async def test_a_namespace_invalidation_on_one_instance_reaches_another(
    instances: Instance,
) -> None:
    a, b = instances
    await b.get_or_load("u1", returning(Profile("u1", "old")))
    await a.invalidate_namespace()

    async def b_reloads() -> bool:
        return await b.get_or_load("u1", returning(Profile("u1", "new"))) == Profile("u1", "new")

    await eventually(b_reloads)


async def test_a_near_cache_needs_a_bus(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url))
    try:
        with pytest.raises(ValueError, match="InvalidationBus"):
            Cache(client, KeySpace("svc"), "profile", Profile, rule=RULE, near_size=10)
    finally:
        await client.aclose()
