"""Audiences of a large group: read from the cache in bounded batches, loaded set-based."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest

from notification.bootstrap import Service
from notification.domain.preferences import Audience, UserSettings
from notification.store.redis_audience import RedisAudienceCache
from notification.store.sql_notifications import SqlNotificationStore
from shared.redis.client import AnyRedis
from shared.service.database import Database

pytestmark = pytest.mark.integration


async def test_a_cold_thousand_member_group_loads_its_audiences_in_a_few_batches(
    redis: AnyRedis,
) -> None:
    cache = RedisAudienceCache(redis, concurrency=32)
    users = [f"u-{uuid.uuid4().hex[:12]}" for _ in range(1000)]
    quiet = users[7]
    calls: list[int] = []

    async def load(user_ids: Sequence[str]) -> dict[str, Audience]:
        calls.append(len(user_ids))
        return {u: Audience(settings=UserSettings(level="none")) for u in user_ids if u == quiet}

    got = await cache.get_many(users, load)

    assert sum(calls) == 1000  # every miss loaded once
    assert len(calls) < 100  # in batches (of up to 32), not one load per member
    assert got[quiet].settings.level == "none"
    assert got[users[0]] == Audience()
    again = await cache.get_many(users, load)
    assert again == got and sum(calls) == 1000  # now served by the cache


async def test_the_audiences_of_many_users_are_those_of_each_user(
    service: Service, database: Database
) -> None:
    store = SqlNotificationStore(database.engine, outbox=service.outbox)
    alice, bob, carol = (f"u-{uuid.uuid4().hex[:12]}" for _ in range(3))
    async with store.unit() as unit:
        await unit.set_block(alice, bob, blocked=True)
        await unit.save_settings(carol, UserSettings(level="mentions"))
    async with store.unit() as unit:
        many = await unit.audiences([alice, bob, carol, alice])
        one_by_one = {u: await unit.audience(u) for u in (alice, bob, carol)}
    assert many == one_by_one
    assert many[alice].blocked == frozenset({bob})
    assert many[carol].settings.level == "mentions"
    assert many[bob] == Audience()
