"""The only wiring of the user service: settings -> clients -> stores -> handlers -> subscribers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from shared.bus import Consumer, ConsumerSettings, Publisher
from shared.bus.metrics import process_metrics
from shared.cache import Cache, InvalidationBus
from shared.keys import KeySpace
from shared.outbox import Outbox
from shared.pubsub import PubSub
from shared.redis.client import AnyRedis
from shared.service.app import service_app
from shared.service.runtime import ServiceRuntime
from user.api.channels import PubSubPersonalChannels
from user.api.subscribers import build_consumer, handler_table
from user.api.sweeper import PresenceSweeper
from user.config import Settings
from user.domain.preferences import Preferences
from user.domain.presence import PresencePolicy
from user.domain.profiles import Profile
from user.handlers.preferences import PreferenceHandlers
from user.handlers.presence import PresenceHandlers
from user.handlers.profiles import ProfileHandlers
from user.handlers.relationships import RelationshipHandlers
from user.store.redis_preferences import CachedPreferenceStore
from user.store.redis_presence import RedisPresenceStore
from user.store.redis_profiles import CachedProfileStore
from user.store.redis_relationships import CachedRelationshipStore, IdList, RelationshipCaches
from user.store.sql_preferences import SqlPreferenceStore
from user.store.sql_profiles import SqlProfileStore
from user.store.sql_relationships import SqlRelationshipStore
from user.store.tables import outbox as outbox_table
from user.store.ttl_policy import TTL

MIGRATIONS = Path(__file__).parent / "store" / "migrations"
KEYS = KeySpace("user")


@dataclass
class UserService:
    """Everything one instance runs: handlers to call and the parts to start and stop."""

    profiles: ProfileHandlers
    relationships: RelationshipHandlers
    preferences: PreferenceHandlers
    presence: PresenceHandlers
    consumer: Consumer
    sweeper: PresenceSweeper
    invalidations: InvalidationBus
    publisher: Publisher
    outbox: Outbox

    async def start(self) -> None:
        """Listen for cache invalidations, relay the outbox, then consume and sweep."""
        await self.invalidations.start()
        self.outbox.start()
        await self.consumer.start()
        await self.sweeper.start()

    async def stop(self) -> None:
        """Stop consuming (in-flight work finishes and is acked), then the rest."""
        await self.consumer.stop()
        await self.sweeper.stop()
        await self.outbox.stop()
        await self.publisher.aclose()
        await self.invalidations.aclose()


def assemble(
    client: AnyRedis,
    engine: AsyncEngine,
    settings: Settings,
    *,
    instance_id: str,
    consumer_settings: ConsumerSettings | None = None,
    publisher: Publisher | None = None,
) -> UserService:
    """Wire one instance of the service on a Redis client and a database engine.

    ``publisher`` replaces the one made here (tests give one whose appends fail).
    """
    pubsub = PubSub(client)
    if publisher is None:
        publisher = Publisher(client, producer="user", metrics=process_metrics())
    outbox = Outbox(engine, outbox_table, publisher)
    invalidations = InvalidationBus(pubsub, KEYS)
    on = settings.cache_enabled

    def cache(namespace: str, type_: type, **options: object) -> Cache:  # type: ignore[type-arg]
        return Cache(client, KEYS, namespace, type_, rule=TTL[namespace], enabled=on, **options)  # type: ignore[arg-type]

    near: dict[str, object] = {}
    if settings.profile_near_cache_size:
        near = {
            "bus": invalidations,
            "near_size": settings.profile_near_cache_size,
            "near_ttl": settings.profile_near_cache_ttl,
        }
    profiles = CachedProfileStore(
        SqlProfileStore(engine, outbox), cache("profile", Profile, **near)
    )
    relationships = CachedRelationshipStore(
        SqlRelationshipStore(engine, outbox),
        # One indexed query each: cheaper than electing a loader across processes (two round
        # trips a miss, and a user coming online misses two of them).
        RelationshipCaches(
            contacts=cache("contacts", IdList, stampede_lock=False),
            watchers=cache("watchers", IdList, stampede_lock=False),
            blocks=cache("blocks", IdList, stampede_lock=False),
            blocked_by=cache("blocked_by", IdList, stampede_lock=False),
        ),
    )
    preferences = CachedPreferenceStore(
        SqlPreferenceStore(engine, outbox), cache("preferences", Preferences)
    )
    policy = PresencePolicy(
        device_ttl=settings.presence_device_ttl, offline_grace=settings.presence_offline_grace
    )
    presence_store = RedisPresenceStore(client, KEYS, policy, retention=TTL["presence"])
    channels = PubSubPersonalChannels(pubsub)
    presence = PresenceHandlers(presence_store, relationships, publisher, channels)
    handlers = (
        ProfileHandlers(profiles, outbox, channels),
        RelationshipHandlers(relationships, profiles, outbox),
        PreferenceHandlers(preferences, profiles, outbox),
        presence,
    )
    consumer = build_consumer(
        client, handler_table(*handlers), instance_id=instance_id, settings=consumer_settings
    )
    sweeper = PresenceSweeper(client, KEYS, presence, interval=settings.presence_sweep_interval)
    return UserService(*handlers, consumer, sweeper, invalidations, publisher, outbox)


def build(runtime: ServiceRuntime) -> Starlette:
    """The user service's ASGI app on a started runtime."""
    assert runtime.database is not None, "the user service owns a database"
    settings = runtime.settings
    if not isinstance(settings, Settings):
        settings = Settings(**settings.model_dump())
    service = assemble(
        runtime.redis, runtime.database.engine, settings, instance_id=settings.instance
    )
    return service_app(runtime, on_startup=[service.start], on_shutdown=[service.stop])
