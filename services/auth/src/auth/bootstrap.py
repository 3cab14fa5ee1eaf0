"""The only wiring of the auth service: settings -> clients -> stores -> handlers -> subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from auth.api.commands import AuthCommands
from auth.api.publishers import to_contract
from auth.api.revocations import GROUP as REVOCATIONS_GROUP
from auth.api.revocations import RevocationSubscribers
from auth.config import Settings
from auth.crypto.passwords import Argon2Parameters, PasswordHasher
from auth.crypto.sealing import Sealer, SealingError, derive, fingerprint, new_key, parse_key
from auth.crypto.tokens import TokenCodec
from auth.domain.lockout import LockoutPolicy
from auth.handlers.accounts import AccountService
from auth.handlers.keys import SigningKeys
from auth.handlers.login import LoginService
from auth.handlers.permissions import PermissionService
from auth.handlers.sessions import SessionService
from auth.store.redis_login import RedisLoginGuard
from auth.store.redis_permissions import RedisPermissionCache
from auth.store.redis_sessions import RedisSessions
from auth.store.sql_keys import SqlSigningKeys
from auth.store.sql_unit_of_work import SqlUnitOfWork
from auth.store.tables import outbox as outbox_table
from contracts import registry
from shared.bus import Consumer, ConsumerSettings, Publisher
from shared.bus.metrics import process_metrics
from shared.bus.publisher import StreamOf
from shared.keys import KeySpace
from shared.locks import RedisLock
from shared.outbox import Outbox
from shared.redis.client import AnyRedis
from shared.service.app import Hook, service_app
from shared.service.errors import StartupError
from shared.service.paths import state_dir
from shared.service.runtime import ServiceRuntime
from shared.sessions import Keyring
from shared.transit import load_transit

MIGRATIONS = Path(__file__).parent / "store" / "migrations"
KEYSPACE = KeySpace("auth")
ROTATION_CHECK_SECONDS = 3600.0
SIGNING_KEYS = "auth/signing-keys/v1"

log = logging.getLogger(__name__)


def key_encryption_key(settings: Settings) -> bytes:
    """The configured key-encryption key; in development only, a generated one under .parley."""
    if settings.key_encryption_key is not None:
        try:
            return parse_key(settings.key_encryption_key.get_secret_value())
        except ValueError as e:
            raise StartupError(f"AUTH_KEY_ENCRYPTION_KEY: {e}") from e
    if settings.environment != "development":
        raise StartupError("AUTH_KEY_ENCRYPTION_KEY (or _FILE) is required outside development")
    path = state_dir() / "auth" / "key-encryption-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new_key())
    log.warning(
        "!!! AUTH_KEY_ENCRYPTION_KEY is not set: using the DEVELOPMENT key in %s. "
        "Never run like this in production (set AUTH_ENVIRONMENT=production and the key). !!!",
        path,
    )
    return parse_key(path.read_text())


def old_key_encryption_keys(settings: Settings) -> list[bytes]:
    """The earlier key-encryption keys (open only), from AUTH_OLD_KEY_ENCRYPTION_KEYS."""
    if settings.old_key_encryption_keys is None:
        return []
    text = settings.old_key_encryption_keys.get_secret_value()
    try:
        return [parse_key(item) for item in text.split(",") if item.strip()]
    except ValueError as e:
        raise StartupError(f"AUTH_OLD_KEY_ENCRYPTION_KEYS: {e}") from e


def key_sealer(settings: Settings, purpose: str) -> Sealer:
    """The sealer of one purpose: the current key seals, every configured key opens."""
    return Sealer(
        key_encryption_key(settings), purpose=purpose, old=old_key_encryption_keys(settings)
    )


async def check_key_store(runtime: ServiceRuntime) -> None:
    """Refuse to start when the stored signing keys do not open with the configured keys (a
    changed key-encryption key without the old one): say so in one line, not a traceback."""
    settings = runtime.settings
    assert isinstance(settings, Settings) and runtime.database is not None
    sealer = key_sealer(settings, SIGNING_KEYS)
    try:
        async with runtime.database.engine.connect() as conn:
            await SqlSigningKeys(conn, sealer).all()
    except SealingError as e:
        raise StartupError(
            "the signing keys in the database do not open with AUTH_KEY_ENCRYPTION_KEY nor "
            "AUTH_OLD_KEY_ENCRYPTION_KEYS: the key-encryption key changed without keeping the "
            "old one (docs/operations.md, 'Rotating the key-encryption key')"
        ) from e


@dataclass(frozen=True)
class AuthComponents:
    """The wired service: subscribers and the parts start-up and tests need."""

    commands: AuthCommands
    revocations: RevocationSubscribers
    keys: SigningKeys
    publisher: Publisher
    outbox: Outbox
    """Its relay runs while the service runs: ``outbox.start()`` / ``outbox.stop()``."""


def wire(
    client: AnyRedis,
    engine: AsyncEngine,
    settings: Settings,
    *,
    publisher: Publisher,
    stream_of: StreamOf = registry.stream_of,
) -> AuthComponents:
    """Stores and handlers on ``client`` and ``engine``; events go through the outbox.

    Events are stored in the ``outbox`` table with their change and appended through
    ``publisher`` after the commit, on the streams ``stream_of`` names (``auth.events``).
    """
    master, old = key_encryption_key(settings), old_key_encryption_keys(settings)
    outbox = Outbox(engine, outbox_table, publisher, stream_of=stream_of)
    uow = functools.partial(  # a UnitOfWorkFactory: each call opens a new unit of work
        SqlUnitOfWork,
        engine,
        replies=Sealer(master, purpose="auth/replies/v1", old=old),
        keys=Sealer(master, purpose=SIGNING_KEYS, old=old),
        outbox=outbox,
        to_contract=to_contract,
    )
    hasher = PasswordHasher(
        Argon2Parameters(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
        ),
        memory_budget=settings.argon2_memory_budget,
    )
    codec = TokenCodec(
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime=settings.access_token_ttl,
    )
    keys = SigningKeys(
        uow,
        codec=codec,
        rotate_after=settings.signing_key_rotation,
        # One rotation decision at a time in the fleet; a rotation is one short transaction.
        exclusive=lambda: RedisLock(client, KEYSPACE, "signing-keys", ttl=30.0, timeout=60.0),
    )
    # Session values name the key that sealed them: after a rotation, sessions sealed under an
    # old key-encryption key still open, and new ones are sealed under the current key.
    ring = {f"kek-{fingerprint(k)}": derive(k, "auth/sessions/v1") for k in (master, *old)}
    # Sessions sealed before key ids named their key say "kek1": the only key of that time, which
    # is the oldest configured one (old keys are listed newest first).
    ring["kek1"] = derive((master, *old)[-1], "auth/sessions/v1")
    keyring = Keyring(ring, current=f"kek-{fingerprint(master)}")
    session_repo = RedisSessions(
        client,
        KEYSPACE,
        keyring,
        idle_ttl=settings.session_idle_ttl,
        max_lifetime=settings.session_max_lifetime,
    )
    sessions = SessionService(session_repo, keys, uow)
    permissions = PermissionService(
        uow, RedisPermissionCache(client, KEYSPACE, enabled=settings.permission_cache)
    )
    guard = RedisLoginGuard(
        client,
        KEYSPACE,
        LockoutPolicy(
            threshold=settings.login_failures,
            window=settings.login_window,
            base=settings.lockout_base,
            ceiling=settings.lockout_max,
            address_threshold=settings.login_address_failures,
            user_threshold=settings.login_user_failures,
            slowdown=settings.login_slowdown,
        ),
    )
    log.info(
        "password hashing: %s, at most %d at a time", hasher.parameters.describe(), hasher.slots
    )
    commands = AuthCommands(
        accounts=AccountService(uow, hasher, sessions, permissions, guard),
        login_service=LoginService(uow, hasher, guard, sessions),
        sessions=sessions,
        keys=keys,
        permissions=permissions,
        transit=load_transit(
            settings.transit_keys,
            development=settings.environment == "development",
            variable="AUTH_TRANSIT_KEYS",
        ),
    )
    return AuthComponents(
        commands=commands,
        revocations=RevocationSubscribers(sessions),
        keys=keys,
        publisher=publisher,
        outbox=outbox,
    )


async def _rotate_when_due(keys: SigningKeys) -> None:
    while True:
        await asyncio.sleep(ROTATION_CHECK_SECONDS)
        try:
            await keys.ensure_active()
        except Exception:
            log.exception("signing-key rotation check failed; retrying in an hour")


def lifecycle(parts: AuthComponents, *consumers: Consumer) -> tuple[Hook, Hook]:
    """The start and stop hooks of a running instance: outbox relay, consumers, key rotation."""
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        # First: the relay appends what an earlier run committed but did not append (it crashed,
        # or Redis refused), and forgets the rows of appended events.
        parts.outbox.start()
        await parts.keys.ensure_active()
        for consumer in consumers:
            await consumer.start()
        tasks.append(asyncio.create_task(_rotate_when_due(parts.keys)))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()
        for consumer in reversed(consumers):
            await consumer.stop()
        # After the consumers, whose last commands have appended their events: forget their rows.
        await parts.outbox.stop()
        await parts.publisher.aclose()

    return start, stop


def build(
    runtime: ServiceRuntime, *, consumer_settings: ConsumerSettings | None = None
) -> Starlette:
    """The auth service's ASGI app on a started runtime."""
    settings = runtime.settings
    assert isinstance(settings, Settings) and runtime.database is not None
    publisher = Publisher(runtime.redis, producer="auth", metrics=process_metrics())
    parts = wire(runtime.redis, runtime.database.engine, settings, publisher=publisher)
    consumer = Consumer(
        runtime.redis,
        group="auth",
        handlers=parts.commands.table(),
        metrics=process_metrics(),
        settings=consumer_settings,
        producer="auth",
        instance_id=settings.instance,
    )
    revocations = Consumer(
        runtime.redis,
        group=REVOCATIONS_GROUP,
        handlers=parts.revocations.table(),
        metrics=process_metrics(),
        settings=consumer_settings,
        producer="auth",
        instance_id=settings.instance,
    )
    start, stop = lifecycle(parts, consumer, revocations)
    return service_app(runtime, on_startup=[start], on_shutdown=[stop])
