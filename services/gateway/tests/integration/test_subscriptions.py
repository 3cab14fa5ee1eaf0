"""Reference-counted channel subscriptions and the send-queue policy through the real pub/sub."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from contracts import chat, realtime, registry
from contracts.base import Envelope, Message
from gateway.domain import close_codes
from gateway.handlers.backend import RequestContext
from gateway.handlers.realtime import Close, Connection, Identity
from gateway.handlers.realtime_options import RealtimeOptions
from gateway.handlers.subscriptions import ChannelHub
from shared.pubsub import PubSub
from shared.redis.client import create_client
from shared.redis.settings import RedisSettings

from .ws_harness import message, uid

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self) -> None:
        self.frames: list[Message] = []

    def on_frame(self, channel: str, envelope: Envelope, msg: Message) -> None:
        self.frames.append(msg)

    def on_gap(self, channel: str) -> None:
        pass


@pytest.fixture(scope="module")
async def pubsub(redis_url: str) -> AsyncIterator[PubSub]:
    client = await create_client(RedisSettings(url=redis_url))
    yield PubSub(client)
    await client.aclose()


async def until(check: object, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]  # noqa: ASYNC110 - polling a condition
            await asyncio.sleep(0.01)


def channel_of(conv: str) -> str:
    return registry.channel("rt.conv").key(conv)


def typing(conv: str) -> realtime.Frame:
    return realtime.frame(
        chat.TypingChanged(conversation_id=conv, user_id="x", typing=True), producer="chat"
    )


def posted(conv: str, seq: int) -> realtime.Frame:
    event = chat.MessagePosted(conversation_id=conv, message=message(conv, seq))
    return realtime.frame(event, producer="chat")


async def test_one_subscription_per_channel_is_shared_and_released_by_the_last(
    pubsub: PubSub,
) -> None:
    hub = ChannelHub(pubsub)
    a, b = Recorder(), Recorder()
    channel = channel_of(uid("c"))
    await hub.acquire(channel, a)
    await hub.acquire(channel, b)
    assert hub.channels == {channel} and hub.refcount(channel) == 2
    assert await pubsub.publish(channel, posted("c", 1)) == 1  # one subscriber: this process
    await until(lambda: a.frames and b.frames)
    await hub.release(channel, a)
    assert hub.is_live(channel)
    await hub.release(channel, b)
    assert channel not in hub.channels
    async with asyncio.timeout(5):  # the unsubscribe goes out with the next write
        while await pubsub.publish(channel, posted("c", 2)) != 0:  # noqa: ASYNC110 - polling Redis
            await asyncio.sleep(0.02)
    await hub.aclose()


async def test_typing_is_dropped_and_messages_kept_when_a_client_does_not_read(
    pubsub: PubSub,
) -> None:
    hub, conv = ChannelHub(pubsub), uid("c")
    ident = Identity(
        user_id=uid(), session_id="s", device_id="d", connection_id="c", expires_at=2e9
    )
    conn = Connection(
        ident,
        hub=hub,
        backend=_NoBackend(),
        options=RealtimeOptions(send_queue=16, droppable_limit=4),
    )
    await conn.join(conv)
    for seq in range(1, 11):
        await pubsub.publish(channel_of(conv), typing(conv), droppable=True)
        await pubsub.publish(channel_of(conv), posted(conv, seq))
    await until(lambda: conn.dropped == 8 and len(conn._queue) == 12)
    sent = []
    while len(conn._queue):
        item = await conn.next_outgoing()
        assert not isinstance(item, Close)
        sent.append(json.loads(item.text))
    assert [f["message"]["seq"] for f in sent if f["type"] == "message.posted"] == list(
        range(1, 11)
    )
    # Now a client that never reads: essential frames overflow the queue and close it.
    for seq in range(11, 30):
        await pubsub.publish(channel_of(conv), posted(conv, seq))
    await until(lambda: conn.closing is not None)
    assert conn.closing == Close(close_codes.SLOW_CONSUMER, "send queue full")
    await conn.release_all()
    await hub.aclose()


class _NoBackend:
    async def call(
        self,
        command: object,
        ctx: RequestContext | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> object:
        raise AssertionError("no command expected")


async def test_a_connections_channels_are_acquired_in_one_batch_over_few_connections(
    redis_url: str,
) -> None:
    client = await create_client(RedisSettings(url=redis_url))
    try:
        pubsub = PubSub(client)
        hub, listener = ChannelHub(pubsub), Recorder()
        channels = [channel_of(uid("c")) for _ in range(300)]
        await hub.acquire_many(channels, listener)
        assert all(hub.is_live(ch) for ch in channels)
        assert hub.refcount(channels[0]) == 1
        primaries = len(client.get_primaries())  # type: ignore[union-attr]
        assert pubsub.connections == primaries  # not one per channel
        assert REGISTRY.get_sample_value("parley_gateway_rt_connections") == primaries
        await pubsub.publish_many([(ch, posted("c", 1)) for ch in channels[::30]])
        await until(lambda: len(listener.frames) == 10)
        await hub.aclose()
        await until(lambda: pubsub.connections == 0)
    finally:
        await client.aclose()
