"""Typed pub/sub on the cluster: sharded channels, drop policy, back-pressure, resubscription."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from typing import ClassVar

import msgspec
import pytest
from redis.asyncio import RedisCluster

from parley.cluster import LocalCluster
from shared.pubsub import PubSub, PubSubError, SlowConsumerError, Subscription
from shared.pubsub.link import Link
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = pytest.mark.integration


class Typing(msgspec.Struct, frozen=True):
    droppable: ClassVar[bool] = True
    user: str
    n: int = 0


class Posted(msgspec.Struct, frozen=True):
    seq: int


def channel() -> str:
    return f"test:rt:{{conv:{uuid.uuid4().hex}}}"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    client = await create_client(RedisSettings(url=redis_url))
    yield client
    await client.aclose()


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110 - polling an observable counter
            await asyncio.sleep(0.01)


async def test_a_subscriber_receives_typed_messages_in_order(client: AnyRedis) -> None:
    pubsub, ch = PubSub(client), channel()
    async with pubsub.subscribe(ch, Posted) as sub:
        for seq in range(5):
            assert await pubsub.publish(ch, Posted(seq)) == 1
        assert [await sub.get(timeout=2) for _ in range(5)] == [Posted(s) for s in range(5)]


async def test_publish_many_reaches_channels_on_every_node_in_order(client: AnyRedis) -> None:
    pubsub = PubSub(client)
    channels = [channel() for _ in range(6)]  # random hash tags: spread over the masters
    async with contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(pubsub.subscribe(ch, Posted)) for ch in channels]
        batch = [(ch, Posted(seq)) for seq in range(3) for ch in channels]
        assert await pubsub.publish_many(batch) == [1] * len(batch)
        for sub in subs:
            assert [await sub.get(timeout=2) for _ in range(3)] == [Posted(s) for s in range(3)]
    assert await pubsub.publish_many([]) == []


async def test_messages_of_another_schema_are_skipped_not_fatal(client: AnyRedis) -> None:
    pubsub, ch = PubSub(client), channel()
    async with pubsub.subscribe(ch, Posted) as sub:
        await pubsub.publish(ch, Typing("u1"))
        await client.execute_command("SPUBLISH", ch, b"garbage")
        await pubsub.publish(ch, Posted(7))
        assert await sub.get(timeout=2) == Posted(7)


async def test_droppable_messages_are_dropped_and_counted_when_the_queue_is_full(
    client: AnyRedis,
) -> None:
    pubsub, ch = PubSub(client), channel()
    async with pubsub.subscribe(ch, Typing, queue_size=2) as sub:
        for n in range(10):
            await pubsub.publish(ch, Typing("u1", n))
        await until(lambda: sub.dropped == 8)
        assert [await sub.get(timeout=1) for _ in range(2)] == [Typing("u1", 0), Typing("u1", 1)]


async def test_non_droppable_messages_apply_back_pressure_and_none_is_lost(
    client: AnyRedis,
) -> None:
    pubsub, ch = PubSub(client, overflow_timeout=None), channel()
    async with pubsub.subscribe(ch, Posted, queue_size=2) as sub:
        for seq in range(50):
            await pubsub.publish(ch, Posted(seq))
        await asyncio.sleep(0.2)  # the reader is now blocked on the full queue
        assert [await sub.get(timeout=2) for _ in range(50)] == [Posted(s) for s in range(50)]
        assert sub.dropped == 0


async def test_a_consumer_too_slow_for_too_long_is_told_not_silently_skipped(
    client: AnyRedis,
) -> None:
    pubsub, ch = PubSub(client, overflow_timeout=0.2), channel()
    async with pubsub.subscribe(ch, Posted, queue_size=2) as sub:
        for seq in range(5):
            await pubsub.publish(ch, Posted(seq))
        await asyncio.sleep(0.5)
        assert [await sub.get(timeout=1) for _ in range(2)] == [Posted(0), Posted(1)]
        with pytest.raises(SlowConsumerError):
            await sub.get(timeout=1)


async def test_a_consumer_waiting_is_told_when_the_reader_fails_instead_of_waiting_forever(
    client: AnyRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Link, kind: bytes, channel: bytes, payload: object) -> None:
        raise RuntimeError("a bug in the reader")

    pubsub, ch = PubSub(client), channel()
    async with pubsub.subscribe(ch, Posted) as sub:
        monkeypatch.setattr(Link, "_push", broken)
        await pubsub.publish(ch, Posted(1))
        with pytest.raises(PubSubError, match="a bug in the reader"):
            await sub.get(timeout=5)  # raised as the reader ends, not after the timeout
        with pytest.raises(PubSubError):
            await sub.get(timeout=5)  # and again on every later call


async def delivered(pubsub: PubSub, ch: str, sub: Subscription[Posted]) -> Posted:
    """Publish numbered messages until one gets through (within 30 s); the one received."""
    async with asyncio.timeout(30):
        seq = 1
        while True:
            try:
                await pubsub.publish(ch, Posted(seq))
                return await sub.get(timeout=0.5)
            except Exception:
                await asyncio.sleep(0.2)
            seq += 1


@contextlib.asynccontextmanager
async def subscribed(
    cluster: LocalCluster,
) -> AsyncIterator[tuple[AnyRedis, PubSub, str, Subscription[Posted]]]:
    """A client of ``cluster`` subscribed to a fresh channel, past a first message."""
    cluster.up()
    client = await create_client(RedisSettings(url=cluster.url()))
    try:
        pubsub, ch = PubSub(client, health_interval=0.5), channel()
        async with pubsub.subscribe(ch, Posted) as sub:
            await pubsub.publish(ch, Posted(0))
            assert await sub.get(timeout=2) == Posted(0)
            yield client, pubsub, ch, sub
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_a_subscriber_keeps_receiving_after_its_channels_node_restarts(
    disposable_cluster: LocalCluster,
) -> None:
    async with subscribed(disposable_cluster) as (client, pubsub, ch, sub):
        assert isinstance(client, RedisCluster)
        owner = client.get_node_from_key(ch)
        assert owner is not None
        disposable_cluster.stop_node(int(owner.port), sig=signal.SIGKILL)
        disposable_cluster.start_node(int(owner.port))

        # Publish until a message gets through: the cluster may need a failover first.
        received = await delivered(pubsub, ch, sub)
        assert received.seq >= 1
        assert sub.gaps >= 1


@pytest.mark.slow
async def test_a_subscriber_survives_the_whole_cluster_going_away_and_coming_back(
    disposable_cluster: LocalCluster,
) -> None:
    # With no node reachable, refreshing the cluster map raises redis-py's
    # RedisClusterException, which is not a RedisError: the subscription must keep trying.
    async with subscribed(disposable_cluster) as (_, pubsub, ch, sub):
        disposable_cluster.down()
        await asyncio.sleep(3)  # several resubscription attempts against no node at all
        disposable_cluster.up()

        received = await delivered(pubsub, ch, sub)
        assert received.seq >= 1 and sub.gaps >= 1
