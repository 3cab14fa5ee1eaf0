"""The only wiring of the chat service: settings -> clients -> stores -> handlers -> subscribers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from chat.api.publishers import BusEvents
from chat.api.subscribers import command_handlers, event_handlers
from chat.handlers.blocks import Blocks
from chat.handlers.conversations import Conversations
from chat.handlers.messages import Messages
from chat.handlers.reading import Reading
from chat.handlers.typing import Typing
from chat.store.redis_conversations import CachedConversations
from chat.store.redis_messages import CachedMessages, RecentMessages
from chat.store.redis_typing import RedisTyping, TypingThrottle
from chat.store.sql_blocks import SqlBlocks
from chat.store.sql_conversations import SqlConversations
from chat.store.sql_messages import SqlMessages
from chat.store.sql_reading import SqlReading
from chat.store.ttl import TTL
from contracts import chat as wire_chat
from contracts import registry
from contracts.base import Message
from contracts.topology import StreamSpec
from shared.bus import Consumer, ConsumerSettings, Publisher
from shared.bus.metrics import process_metrics
from shared.cache import InvalidationBus
from shared.keys import KeySpace
from shared.pubsub import PubSub
from shared.ratelimit import RateLimiter, RateLimitPolicy
from shared.redis.client import AnyRedis
from shared.service.app import service_app
from shared.service.runtime import ServiceRuntime
from shared.ttl import TtlPolicy

MIGRATIONS = Path(__file__).parent / "store" / "migrations"
KEYS = KeySpace("chat")


@dataclass
class Chat:
    """The service's parts, wired: what the subscribers, tests and benchmarks drive."""

    conversations: Conversations
    messages: Messages
    reading: Reading
    typing: Typing
    blocks: Blocks
    publisher: Publisher
    recent: RecentMessages
    sql_messages: SqlMessages
    invalidations: InvalidationBus

    async def start(self) -> None:
        """Hear the peers' cache invalidations (the conversation near-cache depends on it)."""
        await self.invalidations.start()

    async def aclose(self) -> None:
        """Stop timers, flush queued publishes, stop hearing invalidations."""
        await self.typing.aclose()
        await self.publisher.aclose()
        await self.invalidations.aclose()


def wire(
    redis: AnyRedis,
    engine: AsyncEngine,
    *,
    member_limit: int = 1000,
    typing_rate: int = 5,
    typing_burst: int = 10,
    ttl: TtlPolicy = TTL,
    near_size: int = 10_000,
    near_ttl: float = 5.0,
) -> Chat:
    """Stores, handlers and the event sink on a Redis client and a migrated database.

    ``near_size`` conversations (metadata and members) are kept in process for up to
    ``near_ttl`` seconds (0: none); :meth:`Chat.start` must run for peers' changes to reach them.
    """
    publisher = Publisher(redis, producer="chat", metrics=process_metrics())
    pubsub = PubSub(redis)
    events = BusEvents(publisher, pubsub)
    invalidations = InvalidationBus(pubsub, KEYS)
    sql_messages = SqlMessages(engine)
    recent = RecentMessages(redis, KEYS, rule=ttl["recent"])
    conversations = CachedConversations(
        SqlConversations(engine),
        redis,
        KEYS,
        rule=ttl["conversation"],
        bus=invalidations,
        near_size=near_size,
        near_ttl=near_ttl,
    )
    messages = CachedMessages(sql_messages, recent)
    reading = SqlReading(engine)
    blocks = SqlBlocks(engine)
    limiter = RateLimiter(
        redis, KEYS, "typing", RateLimitPolicy(rate=typing_rate, period=1.0, burst=typing_burst)
    )

    def clock() -> datetime:
        return datetime.now(UTC)

    return Chat(
        conversations=Conversations(
            conversations=conversations,
            messages=messages,
            reading=reading,
            blocks=blocks,
            events=events,
            clock=clock,
            member_limit=member_limit,
        ),
        messages=Messages(
            conversations=conversations,
            messages=messages,
            blocks=blocks,
            events=events,
            clock=clock,
        ),
        reading=Reading(conversations=conversations, reading=reading, events=events),
        typing=Typing(
            conversations=conversations,
            typing=RedisTyping(redis, KEYS, rule=ttl["typing"]),
            throttle=TypingThrottle(limiter),
            blocks=blocks,
            events=events,
        ),
        blocks=Blocks(blocks=blocks),
        publisher=publisher,
        recent=recent,
        sql_messages=sql_messages,
        invalidations=invalidations,
    )


# A post is idempotent in the database (unique sender and client message id: a copy gets the
# original back as a replay), so the bus keeps no "handled" marks for it: no read of marks per
# batch, no mark written per post.
IDEMPOTENT = frozenset({wire_chat.PostMessage.TYPE})


def consumer(
    chat: Chat,
    redis: AnyRedis,
    *,
    instance_id: str | None = None,
    settings: ConsumerSettings | None = None,
    stream_of: Callable[[type[Message]], StreamSpec] = registry.stream_of,
) -> Consumer:
    """The service's member of the ``chat`` group: its commands and the user events it follows.

    ``stream_of`` lets tests and benchmarks route the same messages through private streams.
    """
    handlers = {
        **command_handlers(
            conversations=chat.conversations,
            messages=chat.messages,
            reading=chat.reading,
            typing=chat.typing,
        ),
        **event_handlers(blocks=chat.blocks),
    }
    return Consumer(
        redis,
        group="chat",
        handlers=handlers,
        metrics=process_metrics(),
        instance_id=instance_id,
        settings=(settings or ConsumerSettings()).model_copy(update={"idempotent": IDEMPOTENT}),
        stream_of=stream_of,
        producer="chat",
    )


def build(runtime: ServiceRuntime) -> Starlette:
    """The chat service's ASGI app on a started runtime."""
    from chat.config import Settings

    settings = runtime.settings
    assert isinstance(settings, Settings)
    assert runtime.database is not None
    chat = wire(
        runtime.redis,
        runtime.database.engine,
        member_limit=settings.member_limit,
        typing_rate=settings.typing_rate,
        typing_burst=settings.typing_burst,
    )
    bus = consumer(chat, runtime.redis, instance_id=settings.instance)

    async def start() -> None:
        await chat.start()
        await bus.start()

    async def stop() -> None:
        await bus.stop()
        await chat.aclose()

    return service_app(runtime, on_startup=[start], on_shutdown=[stop])
