"""The auth service on the real test cluster and real databases, driven through the bus."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from auth.api.revocations import GROUP as REVOCATIONS_GROUP
from auth.bootstrap import MIGRATIONS, AuthComponents, wire
from auth.config import Settings
from auth.crypto.sealing import new_key
from contracts import auth as wire_auth
from contracts.base import Command, Envelope, Event, Message
from contracts.topology import StreamSpec
from shared.bus import Consumer, ConsumerSettings, Publisher, Requester
from shared.bus import wire as bus_wire
from shared.bus.publisher import StreamOf
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.service.database import Database
from shared.sessions import Keyring

FAST = ConsumerSettings(
    batch=64, block_ms=100, max_deliveries=3, backoff_base=0.01, backoff_max=0.05, lease_ttl=2.0
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A fresh, migrated database of the auth service (SQLite, then PostgreSQL)."""
    db = Database(database_url)
    await db.migrate(MIGRATIONS)
    yield db
    await db.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[AnyRedis]:
    client = await create_client(RedisSettings(url=redis_url))
    yield client
    await client.aclose()


def fast_settings(**overrides: Any) -> Settings:
    """Settings with cheap Argon2 (the suite stays fast) and a fresh key-encryption key."""
    values: dict[str, Any] = {
        "key_encryption_key": new_key(),
        "transit_keys": f"t1:{Keyring.generate_key()}",
        "argon2_time_cost": 1,
        "argon2_memory_cost": 8,
        "argon2_parallelism": 1,
        "permission_cache": True,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class AuthOverBus:
    """A running auth instance on private streams, and a client that sends it commands."""

    parts: AuthComponents
    requester: Requester
    database: Database
    redis: AnyRedis
    events_spec: StreamSpec
    commands_spec: StreamSpec
    client_publisher: Publisher
    stream_of: StreamOf

    async def send(self, command: Command) -> Any:
        """Send ``command`` through the bus and return its reply (typed loosely for tests).

        Passwords and tokens are sealed and opened as the gateway does (shared.transit).
        """
        transit = self.parts.commands.transit
        reply = await self.requester.request(transit.seal(command), timeout=5.0)
        if reply.ok and isinstance(reply.result, msgspec.Struct):
            return msgspec.structs.replace(reply, result=transit.open(reply.result))
        return reply


@pytest.fixture
def settings() -> Settings:
    return fast_settings()


@pytest.fixture
def publisher_type() -> type[Publisher]:
    """The class of the service's event publisher (a test may pass one that fails)."""
    return Publisher


@pytest.fixture
async def auth(
    redis: AnyRedis, database: Database, settings: Settings, publisher_type: type[Publisher]
) -> AsyncIterator[AuthOverBus]:
    """The auth service wired on real stores, consuming commands from streams of its own."""
    owner = f"t{uuid.uuid4().hex[:10]}"
    commands = StreamSpec(name=f"{owner}.commands", owner=owner, partitions=2, max_len=10_000)
    events = StreamSpec(name=f"{owner}.events", owner=owner, partitions=2, max_len=10_000)

    def stream_of(cls: type[Message]) -> StreamSpec:
        return commands if isinstance(cls, type) and issubclass(cls, Command) else events

    publisher = publisher_type(redis, producer="auth", stream_of=stream_of)
    parts = wire(redis, database.engine, settings, publisher=publisher, stream_of=stream_of)
    await parts.keys.ensure_active()
    consumer = Consumer(
        redis,
        group="auth",
        handlers=parts.commands.table(),
        settings=FAST,
        stream_of=stream_of,
        producer="auth",
    )
    revocations = Consumer(
        redis,
        group=REVOCATIONS_GROUP,
        handlers=parts.revocations.table(),
        settings=FAST,
        stream_of=stream_of,
        producer="auth",
    )
    client_publisher = Publisher(redis, producer="gateway", stream_of=stream_of)
    async with (
        consumer,
        revocations,
        Requester(redis, client_publisher, instance_id=owner) as requester,
    ):
        yield AuthOverBus(
            parts, requester, database, redis, events, commands, client_publisher, stream_of
        )
    await parts.outbox.stop()
    await publisher.aclose()
    await client_publisher.aclose()


GOOD = "correct horse battery"
EVENT_TYPES: dict[str, type[Event]] = {
    c.TYPE: c
    for c in (
        wire_auth.AccountRegistered,
        wire_auth.PasswordChanged,
        wire_auth.SessionRevoked,
        wire_auth.RoleChanged,
        wire_auth.SigningKeysRotated,
    )
}


def name() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


async def register(auth: AuthOverBus, username: str | None = None) -> wire_auth.TokenPair:
    reply = await auth.send(
        wire_auth.Register(username=username or name(), password=GOOD, display_name="Test")
    )
    assert reply.ok, reply.error
    return reply.result  # type: ignore[no-any-return]


async def appended(auth: AuthOverBus) -> list[tuple[Envelope, Event]]:
    """Every entry on the test's events stream, in the order the events occurred."""
    found = []
    for key in auth.events_spec.partition_keys():
        entries: Any = await auth.redis.xrange(key)
        for _entry_id, fields in entries:
            env = bus_wire.decode_envelope(fields)
            found.append((env, bus_wire.decode_payload(EVENT_TYPES[env.type], fields)))
    return sorted(found, key=lambda f: f[0].occurred_at)


async def events(auth: AuthOverBus) -> list[Event]:
    """The events on the test's events stream, in the order they occurred."""
    return [event for _, event in await appended(auth)]


async def password_changed_beside_a_second_session(
    auth: AuthOverBus, username: str | None = None
) -> tuple[wire_auth.TokenPair, wire_auth.TokenPair]:
    """A new account, a second login, then a password change from the first session."""
    username = username or name()
    first = await register(auth, username)
    second = (await auth.send(wire_auth.Login(username=username, password=GOOD))).result
    changed = await auth.send(
        wire_auth.ChangePassword(
            user_id=first.user_id,
            session_id=first.session_id,
            old_password=GOOD,
            new_password="a brand new secret",
        )
    )
    assert changed.ok, changed.error
    return first, second
