"""The gateway's consumers on the real cluster: the groups of stopped instances are swept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from contracts import registry
from contracts.auth import SessionRevoked
from contracts.base import Envelope
from gateway.api.events import CACHE_GROUP, INSTANCE_GROUP, GatewayEvents
from shared.bus import ConsumerSettings, wire
from shared.redis.client import AnyRedis, create_client
from shared.redis.settings import RedisSettings

from .ws_harness import uid

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[AnyRedis]:
    client = await create_client(RedisSettings(url=redis_url))
    try:
        yield client
    finally:
        await client.aclose()


async def ignore(_: Any, __: Envelope) -> None:
    return None


def instance(redis: AnyRedis, name: str) -> GatewayEvents:
    return GatewayEvents(
        redis,
        {SessionRevoked: ignore},
        group=INSTANCE_GROUP,
        instance_id=name,
        settings=ConsumerSettings(block_ms=50),
        sweep_interval=3600,  # the test sweeps by hand
    )


async def groups_on_auth_events(redis: AnyRedis) -> dict[str, int]:
    spec = registry.stream("auth.events")
    seen: dict[str, int] = {}
    for key in spec.partition_keys():
        if await redis.exists(key):
            for g in await redis.xinfo_groups(key):
                name = wire.as_text(g["name"])
                seen[name] = seen.get(name, 0) + 1
    return seen


async def test_the_groups_of_a_stopped_instance_are_swept_and_live_ones_kept(
    redis: AnyRedis,
) -> None:
    tag = uid()[:8]
    survivor, crashed, other = (instance(redis, f"sweep-{n}-{tag}") for n in "abc")
    for consumer in (survivor, crashed, other):
        await consumer.start()
    try:
        # As if it crashed: it stops heartbeating and its groups stay on the streams.
        await crashed.stop(destroy=False)
        partitions = registry.stream("auth.events").partitions
        assert (await groups_on_auth_events(redis))[crashed.group] == partitions
        assert await survivor.sweep() == partitions
        left = await groups_on_auth_events(redis)
        assert crashed.group not in left
        assert left[survivor.group] == left[other.group] == partitions
        assert await other.sweep() == 0  # nothing else to remove; the survivor is alive
    finally:
        await survivor.stop()
        await other.stop()


async def test_a_shared_group_with_the_same_prefix_is_never_swept(redis: AnyRedis) -> None:
    key = registry.stream("auth.events").key(0)
    await redis.xgroup_create(key, CACHE_GROUP, id="$", mkstream=True)  # no heartbeat at all
    sweeper = instance(redis, f"sweep-d-{uid()[:8]}")
    await sweeper.start()
    try:
        await sweeper.sweep()
        assert CACHE_GROUP in await groups_on_auth_events(redis)
    finally:
        await sweeper.stop()
        await redis.xgroup_destroy(key, CACHE_GROUP)


def test_the_cache_group_is_shared_and_never_swept() -> None:
    assert not registry.group(CACHE_GROUP).per_instance
    assert registry.group(INSTANCE_GROUP).per_instance
    assert registry.group(INSTANCE_GROUP).streams == ("auth.events",)
