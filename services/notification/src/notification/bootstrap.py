"""The only wiring of the notification service.

Settings -> clients -> stores -> handlers -> subscribers. :func:`assemble` builds the whole
service on a Redis client and a database engine (tests and the benchmark use it too);
:func:`build` wraps it into the ASGI app on a started runtime.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from notification.api.subscribers import Handlers, build_consumers
from notification.channels import InAppChannel, LogChannel, WebhookChannel
from notification.channels.destinations import WebhookGuard
from notification.channels.webhook_secrets import WebhookSecrets, sealing_keyring
from notification.config import Settings
from notification.domain.delivery import ChannelName
from notification.domain.webhooks import WebhookPolicy
from notification.handlers.delivering import DeliveryHandlers, Dispatcher
from notification.handlers.messages import MessageHandlers
from notification.handlers.preferences import PreferenceHandlers
from notification.handlers.projections import ProjectionHandlers
from notification.handlers.reading import ReadingHandlers
from notification.store.outbox import service_outbox, service_publisher
from notification.store.protocols import Channel
from notification.store.redis_audience import RedisAudienceCache
from notification.store.redis_badges import RedisBadges
from notification.store.redis_keys import KEYS
from notification.store.redis_members import RedisMembersCache
from notification.store.redis_realtime import RedisRealtimeState
from notification.store.sql_notifications import SqlNotificationStore
from notification.store.sql_webhook_secrets import SqlWebhookSecrets
from shared.bus import Consumer, ConsumerSettings, Publisher
from shared.cache import InvalidationBus
from shared.outbox import Outbox
from shared.pubsub import PubSub
from shared.redis.client import AnyRedis
from shared.service.app import service_app
from shared.service.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "store" / "migrations"

CONSUMER = ConsumerSettings()
log = logging.getLogger(__name__)


@dataclass
class Service:
    """The assembled service: its handlers, consumers and outbox, started and stopped together."""

    handlers: Handlers
    consumers: list[Consumer]
    publisher: Publisher
    outbox: Outbox
    webhook: WebhookChannel
    invalidations: InvalidationBus
    _started: bool = field(default=False)

    async def start(self) -> None:
        """Listen for cache invalidations, start the outbox's relay, then start consuming."""
        await self.invalidations.start()
        self.outbox.start()
        for consumer in self.consumers:
            await consumer.start()
        self._started = True

    async def stop(self) -> None:
        """Stop consuming (in-flight work finishes and is acknowledged), stop the relay (the
        rows of appended entries are forgotten), flush, close."""
        if self._started:
            for consumer in self.consumers:
                await consumer.stop()
        with contextlib.suppress(Exception):
            await self.outbox.stop()
        with contextlib.suppress(Exception):
            await self.invalidations.aclose()
            await self.publisher.aclose()
            await self.webhook.aclose()


def assemble(
    redis: AnyRedis,
    engine: AsyncEngine,
    settings: Settings,
    *,
    consumer_settings: ConsumerSettings | None = None,
    cache_enabled: bool = True,
    publisher: Publisher | None = None,
) -> Service:
    """Wire stores, channels, handlers and consumers (nothing connects until started).

    ``publisher`` appends the service's stream entries (default: :func:`service_publisher`).
    """
    publisher = publisher or service_publisher(redis)
    outbox = service_outbox(engine, publisher)
    store = SqlNotificationStore(engine, outbox=outbox)
    pubsub = PubSub(redis)
    invalidations = InvalidationBus(pubsub, KEYS)
    audiences = RedisAudienceCache(redis, bus=invalidations, enabled=cache_enabled)
    members = RedisMembersCache(redis, bus=invalidations, enabled=cache_enabled)
    realtime = RedisRealtimeState(redis)
    badges = RedisBadges(redis)
    guard = webhook_guard(settings)
    webhooks = webhook_secrets(engine, settings, guard)
    webhook = WebhookChannel(
        guard=guard,
        key_of=webhooks.key_of,
        attempts=settings.webhook_attempts,
        backoff_base=settings.webhook_backoff_base,
        backoff_max=settings.webhook_backoff_max,
        timeout=settings.webhook_timeout,
        max_response=settings.webhook_max_response,
    )
    placeholder: list[ReadingHandlers] = []

    async def unread(user_id: str) -> int:
        return await placeholder[0].unread_count(user_id)

    in_app = InAppChannel(pubsub, publisher, unread=unread)
    dispatcher = Dispatcher(outbox=outbox, badges=badges, in_app=in_app)
    reading = ReadingHandlers(store=store, badges=badges, dispatcher=dispatcher)
    placeholder.append(reading)
    channels: dict[ChannelName, Channel] = {"in_app": in_app, "log": LogChannel()}
    if settings.webhook_secret is not None:
        channels["webhook"] = webhook
    handlers = Handlers(
        messages=MessageHandlers(
            store=store,
            audiences=audiences,
            members=members,
            realtime=realtime,
            dispatcher=dispatcher,
            coalesce_window=timedelta(seconds=settings.coalesce_window),
        ),
        reading=reading,
        preferences=PreferenceHandlers(store=store, audiences=audiences, webhooks=webhooks),
        projections=ProjectionHandlers(
            store=store, members=members, realtime=realtime, dispatcher=dispatcher
        ),
        delivering=DeliveryHandlers(store=store, channels=channels),
    )
    consumers = build_consumers(
        redis, handlers, instance_id=settings.instance, settings=consumer_settings or CONSUMER
    )
    return Service(
        handlers=handlers,
        consumers=consumers,
        publisher=publisher,
        outbox=outbox,
        webhook=webhook,
        invalidations=invalidations,
    )


def webhook_guard(settings: Settings) -> WebhookGuard:
    """The SSRF guard with the development exceptions of ``settings`` (loudly logged)."""
    policy = WebhookPolicy(
        allow_http=settings.webhook_dev_allow_http,
        allowed_networks=tuple(settings.webhook_dev_allowed_networks),
    )
    if policy.allow_http or policy.allowed_networks:
        log.warning(
            "DEVELOPMENT webhook policy: http %s, internal networks let through: %s",
            "allowed" if policy.allow_http else "refused",
            ", ".join(map(str, policy.allowed_networks)) or "none",
        )
    return WebhookGuard(policy)


def webhook_secrets(engine: AsyncEngine, settings: Settings, guard: WebhookGuard) -> WebhookSecrets:
    """Per-user webhook secrets sealed under the master key (none issued without one)."""
    master = settings.webhook_secret
    keyring = sealing_keyring(master.get_secret_value().encode()) if master else None
    return WebhookSecrets(store=SqlWebhookSecrets(engine), keyring=keyring, guard=guard)


def build(runtime: ServiceRuntime) -> Starlette:
    """The notification service's ASGI app on a started runtime."""
    assert runtime.database is not None
    settings = runtime.settings
    assert isinstance(settings, Settings)
    service = assemble(runtime.redis, runtime.database.engine, settings)
    return service_app(runtime, on_startup=[service.start], on_shutdown=[service.stop])
