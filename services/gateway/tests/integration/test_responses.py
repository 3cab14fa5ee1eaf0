"""The response cache on the real cluster: invalidation reaches entries of every instance."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.handlers.responses import ResponseCache
from shared.keys import KeySpace
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[AnyRedis]:
    client = await create_client(RedisSettings(url=redis_url))
    yield client
    await client.aclose()


async def test_an_instance_with_its_cache_off_still_drops_what_the_others_cached(
    redis: AnyRedis,
) -> None:
    # Every gateway shares one group for invalidations, so any instance may get the event.
    keyspace = KeySpace(f"gw{uuid.uuid4().hex[:8]}")
    caching, plain = ResponseCache(redis, keyspace), ResponseCache(redis, keyspace, enabled=False)
    loads: list[int] = []

    async def load(tags: list[str]) -> bytes:
        loads.append(1)
        tags.append("conv:c1")
        return f'{{"n": {len(loads)}}}'.encode()

    async def ask() -> bytes:
        answer = await caching.get_or_load("messages", viewer="v", path="/p", query="", load=load)
        return answer.body

    assert await ask() == b'{"n": 1}'
    assert await ask() == b'{"n": 1}'  # from the cache
    assert await plain.invalidate(["conv:c1"]) == 1
    assert await ask() == b'{"n": 2}'
