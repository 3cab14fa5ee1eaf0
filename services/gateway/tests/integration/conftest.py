"""The gateway in front of the REAL auth and user services, on the test cluster and SQLite.

One fleet per test module (starting it costs more than the tests): auth and user are wired with
their own ``wire``/``assemble`` functions and consume the real streams; the gateway app runs with
its lifespan and is driven through ``httpx.AsyncClient`` over ``ASGITransport``.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from auth.bootstrap import MIGRATIONS as AUTH_MIGRATIONS
from auth.bootstrap import wire as wire_auth
from auth.config import Settings as AuthSettings
from auth.crypto.sealing import new_key
from gateway.bootstrap import build
from gateway.config import Settings as GatewaySettings
from shared.bus import Consumer, ConsumerSettings, Publisher
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.service.database import Database
from shared.service.runtime import ServiceRuntime
from user.bootstrap import MIGRATIONS as USER_MIGRATIONS
from user.bootstrap import assemble as assemble_user
from user.config import Settings as UserSettings

FAST = ConsumerSettings(
    batch=64, block_ms=50, max_deliveries=3, backoff_base=0.01, backoff_max=0.05, lease_ttl=2.0
)


@dataclass
class Fleet:
    """The running services and a client of the gateway."""

    http: httpx.AsyncClient
    redis: AnyRedis
    app: FastAPI

    async def register(self, **extra: Any) -> dict[str, Any]:
        """A new account (random name); its tokens."""
        body = {
            "username": f"u{secrets.token_hex(6)}",
            "password": f"pw-{secrets.token_hex(10)}",
            "display_name": "Test User",
        }
        body.update(extra)
        response = await self.http.post("/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        return {**response.json(), "username": body["username"], "password": body["password"]}

    async def wait_for(self, method: str, url: str, status: int, **kw: Any) -> httpx.Response:
        """Repeat a request until it answers ``status`` (events are asynchronous), up to 15 s.

        Generous: on a loaded machine a fresh instance may wait out its predecessors' leases
        before it reads the partition that carries the event.
        """
        response = await self.http.request(method, url, **kw)
        for _ in range(300):
            if response.status_code == status:
                return response
            await asyncio.sleep(0.05)
            response = await self.http.request(method, url, **kw)
        return response


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of an access token."""
    return {"Authorization": f"Bearer {token}"}


async def _database(path: Path, migrations: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate(migrations)
    return db


@pytest.fixture(scope="module")
async def fleet(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    """Auth + user + gateway on the test cluster, for one test module."""
    tmp = tmp_path_factory.mktemp("fleet")
    client = await create_client(RedisSettings(url=redis_url))
    auth_db = await _database(tmp / "auth.db", AUTH_MIGRATIONS)
    user_db = await _database(tmp / "user.db", USER_MIGRATIONS)
    auth_settings = AuthSettings(
        key_encryption_key=SecretStr(new_key()), argon2_time_cost=1, argon2_memory_cost=8,
        argon2_parallelism=1,
    )  # fmt: skip
    auth_publisher = Publisher(client, producer="auth")
    auth = wire_auth(client, auth_db.engine, auth_settings, publisher=auth_publisher)
    await auth.keys.ensure_active()
    auth_consumer = Consumer(
        client, group="auth", handlers=auth.commands.table(), settings=FAST, producer="auth"
    )
    user = assemble_user(
        client, user_db.engine, UserSettings(), instance_id=f"user-{uuid.uuid4().hex[:8]}",
        consumer_settings=FAST,
    )  # fmt: skip
    settings = GatewaySettings(
        redis_url=redis_url,
        instance=f"gw-{uuid.uuid4().hex[:8]}",
        user_rate=10,
        user_burst=30,
        address_rate=10_000,
        address_burst=10_000,
        auth_rate=10_000,
        auth_burst=10_000,
    )
    runtime = ServiceRuntime("gateway", settings, owns_database=False)
    await runtime.start()
    app = build(runtime, consumer_settings=FAST)
    await auth_consumer.start()
    await user.start()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                yield Fleet(http=http, redis=client, app=app)
    finally:
        await user.stop()
        await auth_consumer.stop()
        await auth_publisher.aclose()
        await runtime.stop()
        await auth_db.close()
        await user_db.close()
        await client.aclose()
