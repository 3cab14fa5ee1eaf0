"""Fixtures of the user service's tests: a migrated database (SQLite, and PostgreSQL when a
server is reachable), a cluster client, and whole service instances wired like production."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus import ConsumerSettings
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.service.database import Database
from user.bootstrap import MIGRATIONS, UserService, assemble
from user.config import Settings

PG_ADMIN = os.environ.get("PARLEY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")

FAST_BUS = ConsumerSettings(
    batch=64, block_ms=100, max_deliveries=3, backoff_base=0.01, backoff_max=0.05, lease_ttl=2.0
)

MakeService = Callable[..., Awaitable[UserService]]


async def _postgres_url() -> AsyncGenerator[str, None]:
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN} (set PARLEY_TEST_POSTGRES_DSN)")
    name = f"parley_user_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A freshly migrated database of the user service."""
    if request.param == "sqlite":
        urls: AsyncGenerator[str, None] | None = None
        url = f"sqlite+aiosqlite:///{tmp_path}/user.db"
    else:
        urls = _postgres_url()
        url = await urls.__anext__()
    db = Database(url)
    await db.migrate(MIGRATIONS)
    try:
        yield db.engine
    finally:
        await db.close()
        if urls is not None:
            await urls.aclose()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    """A cluster client on the test cluster."""
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


@pytest.fixture
async def make_service(client: AnyRedis, engine: AsyncEngine) -> AsyncIterator[MakeService]:
    """Builds (and afterwards stops) service instances sharing the cluster and the database.

    ``started=True`` also starts consuming and sweeping; otherwise only the cache bus runs.
    """
    running: list[tuple[UserService, bool]] = []

    async def make(*, started: bool = False, **overrides: object) -> UserService:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        service = assemble(
            client,
            engine,
            settings,
            instance_id=f"test-{secrets.token_hex(4)}",
            consumer_settings=FAST_BUS,
        )
        if started:
            await service.start()
        else:
            await service.invalidations.start()
        running.append((service, started))
        return service

    yield make
    for service, started in reversed(running):
        if started:
            await service.stop()
        else:
            await service.invalidations.aclose()
            await service.publisher.aclose()
