"""Fixtures of the chat service's tests: a migrated database (SQLite, PostgreSQL) and the wired
service on the real test cluster."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from chat.bootstrap import MIGRATIONS, Chat, wire
from chat.store.ttl import TTL
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.service.database import Database
from shared.ttl import TtlPolicy, TtlRule

PG_ADMIN = os.environ.get("PARLEY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")

# The production table with a short typing TTL, so "typing expires on its own" takes a second.
FAST_TTL = TtlPolicy({**dict(TTL.items()), "typing": TtlRule(ttl=0.6, jitter=0.0)})


async def _postgres_available() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated chat database: SQLite always, PostgreSQL when a server is reachable."""
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/chat.db")
        await db.migrate(MIGRATIONS)
        yield db
        await db.close()
        return
    if not await _postgres_available():
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN} (set PARLEY_TEST_POSTGRES_DSN)")
    name = f"parley_chat_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    db = Database(f"{base}/{name}")
    try:
        await db.migrate(MIGRATIONS)
        yield db
    finally:
        await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


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
