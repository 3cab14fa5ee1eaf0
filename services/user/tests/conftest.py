"""Fixtures of the user service's tests: a migrated database (SQLite, and PostgreSQL when a
server is reachable), a cluster client, and whole service instances wired like production."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus import ConsumerSettings, Publisher
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.service.database import Database
from user.bootstrap import MIGRATIONS, UserService, assemble
from user.config import Settings

FAST_BUS = ConsumerSettings(
    batch=64, block_ms=100, max_deliveries=3, backoff_base=0.01, backoff_max=0.05, lease_ttl=2.0
)

MakeService = Callable[..., Awaitable[UserService]]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A freshly migrated database of the user service (SQLite, then PostgreSQL)."""
    db = Database(database_url)
    await db.migrate(MIGRATIONS)
    yield db.engine
    await db.close()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    """A cluster client on the test cluster."""
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


@pytest.fixture
async def make_service(client: AnyRedis, engine: AsyncEngine) -> AsyncIterator[MakeService]:
    """Builds (and afterwards stops) service instances sharing the cluster and the database.

    ``started=True`` also starts consuming, sweeping and the outbox relay; otherwise only the
    cache bus runs. ``publisher`` replaces the service's own (one whose appends fail, say).
    """
    running: list[tuple[UserService, bool]] = []

    async def make(
        *, started: bool = False, publisher: Publisher | None = None, **overrides: object
    ) -> UserService:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        service = assemble(
            client,
            engine,
            settings,
            instance_id=f"test-{secrets.token_hex(4)}",
            consumer_settings=FAST_BUS,
            publisher=publisher,
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
            await service.outbox.stop()
            await service.invalidations.aclose()
            await service.publisher.aclose()
