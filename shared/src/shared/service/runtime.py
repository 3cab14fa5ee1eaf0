"""What a running service holds: its settings, its Redis client, its database, its readiness.

A service's ``bootstrap.py`` receives a started :class:`ServiceRuntime` and wires its stores and
handlers from it. Nothing connects at import time: :meth:`ServiceRuntime.start` does, once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from redis.exceptions import RedisError

from shared.redis.client import AnyRedis, create_client
from shared.redis.health import check_redis
from shared.service.database import Database
from shared.service.errors import StartupError
from shared.service.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One readiness check's outcome."""

    name: str
    ok: bool
    detail: str = ""


class ServiceRuntime:
    """Connections and lifecycle of one service instance."""

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        migrations: Path | None = None,
        owns_database: bool = True,
    ) -> None:
        self.name = name
        self.settings = settings
        self.migrations = migrations
        self.database: Database | None = (
            Database(settings.database(name), name=name, breaker=settings.breaker())
            if owns_database
            else None
        )
        self._redis: AnyRedis | None = None

    @property
    def redis(self) -> AnyRedis:
        """The Redis client; only after :meth:`start`."""
        if self._redis is None:
            raise RuntimeError("the runtime has not started")
        return self._redis

    async def start(self) -> None:
        """Connect to Redis and the database (migrating it in development) or raise StartupError."""
        timeout = self.settings.redis_connect_timeout
        try:
            self._redis = await asyncio.wait_for(create_client(self.settings.redis()), timeout)
            await asyncio.wait_for(self._redis.ping(), timeout)
        except (RedisError, OSError, TimeoutError) as e:
            reason = str(e) or type(e).__name__
            raise StartupError(f"cannot reach Redis at {self.settings.redis_url}: {reason}") from e
        if self.database is not None:
            try:
                await asyncio.wait_for(self.database.ping(), timeout)
                if self.settings.migrate_on_start and self.migrations is not None:
                    await self.database.migrate(self.migrations)
            except Exception as e:
                raise StartupError(f"database {self._safe_db_url()}: {e}") from e

    async def stop(self) -> None:
        """Close every connection this runtime opened."""
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self.database is not None:
            await self.database.close()

    async def readiness(self) -> list[Check]:
        """Redis reachable with every slot covered, and the database reachable."""
        checks: list[Check] = []
        if self._redis is None:
            checks.append(Check("redis", False, "not connected"))
        else:
            health = await check_redis(self._redis)
            checks.append(Check("redis", health.ok, health.summary()))
        if self.database is not None:
            try:
                await asyncio.wait_for(self.database.ping(), 2.0)
                checks.append(Check("database", True))
            except Exception as e:
                checks.append(Check("database", False, str(e) or type(e).__name__))
        return checks

    def _safe_db_url(self) -> str:
        from sqlalchemy.engine import make_url

        assert self.database is not None
        return make_url(self.database.url).render_as_string(hide_password=True)
