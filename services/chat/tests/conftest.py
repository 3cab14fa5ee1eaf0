"""Fixtures of the chat service's tests: a migrated database (SQLite, PostgreSQL) and the wired
service on the real test cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chat.bootstrap import MIGRATIONS, Chat, wire
from chat.store.ttl import TTL
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.service.database import Database
from shared.ttl import TtlPolicy, TtlRule

# The production table with a short typing TTL, so "typing expires on its own" takes a second.
FAST_TTL = TtlPolicy({**dict(TTL.items()), "typing": TtlRule(ttl=0.6, jitter=0.0)})


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A fresh, migrated chat database (SQLite, then PostgreSQL)."""
    db = Database(database_url)
    await db.migrate(MIGRATIONS)
    yield db
    await db.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[AnyRedis]:
    """A cluster client on the test cluster."""
    client = await create_client(RedisSettings(url=redis_url))
    yield client
    await client.aclose()


@pytest.fixture
async def chat(redis: AnyRedis, database: Database) -> AsyncIterator[Chat]:
    """The service wired on the test cluster and the database (typing TTL shortened)."""
    service = wire(redis, database.engine, member_limit=8, ttl=FAST_TTL)
    yield service
    await service.aclose()
