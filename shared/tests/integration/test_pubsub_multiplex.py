"""Multiplexed pub/sub on the real cluster: one connection per primary, channels that follow
their slot one by one, and consumers that cannot stall each other."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from parley.cluster import LocalCluster
from shared.pubsub import PubSub, Subscription
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = pytest.mark.integration


class Posted(msgspec.Struct, frozen=True):
    seq: int


def channel(tag: str | None = None) -> str:
    return f"test:rt:{{conv:{tag or uuid.uuid4().hex}}}:{uuid.uuid4().hex[:6]}"


def unique_name() -> str:
    return f"test-pubsub-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[RedisCluster]:
    client = await create_client(RedisSettings(url=redis_url))
    assert isinstance(client, RedisCluster)
    yield client
    await client.aclose()


class Recorder:
    """A listener that keeps what it was told."""

    def __init__(self) -> None:
        self.messages: dict[str, list[int]] = {}
        self.gaps: dict[str, int] = {}

    def on_message(self, channel: str, message: Posted) -> None:
        self.messages.setdefault(channel, []).append(message.seq)

    def on_gap(self, channel: str) -> None:
        self.gaps[channel] = self.gaps.get(channel, 0) + 1

    def on_failure(self, channel: str, error: Exception) -> None:
        raise AssertionError(f"{channel} failed: {error}")


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling an observable state
            await asyncio.sleep(0.02)


def owner_of(client: AnyRedis, ch: str) -> ClusterNode:
    """The primary owning ``ch``'s slot, as the client's map says."""
    assert isinstance(client, RedisCluster)
    node = client.get_node_from_key(ch)
    assert node is not None
    return node


async def on_node(node: Any, *command: Any) -> Any:
    """Run ``command`` on one node of the cluster (not routed by key)."""
    conn = Redis(host=node.host, port=int(node.port))
    try:
        return await conn.execute_command(*command)  # type: ignore[no-untyped-call]
    finally:
        await conn.aclose()


async def named_connections(client: RedisCluster, name: str) -> dict[str, int]:
    """How many connections named ``name`` each primary has."""
    counts = {}
    for node in client.get_primaries():
        conn = Redis(host=node.host, port=int(node.port))
        try:
            clients = await conn.client_list()
        finally:
            await conn.aclose()
        counts[node.name] = sum(1 for c in clients if c.get("name") == name)
    return counts


async def test_a_thousand_channels_share_one_connection_per_primary(client: RedisCluster) -> None:
    name, recorder = unique_name(), Recorder()
    pubsub = PubSub(client, name=name)
    channels = [channel() for _ in range(1000)]
    await pubsub.listen(channels, Posted, recorder)
    try:
        assert await named_connections(client, name) == {n.name: 1 for n in client.get_primaries()}
        assert pubsub.connections == len(client.get_primaries())
        sample = channels[::100]
        await pubsub.publish_many([(ch, Posted(7)) for ch in sample])
        await until(lambda: all(recorder.messages.get(ch) == [7] for ch in sample))
    finally:
        pubsub.unlisten(channels, recorder)
    await until(lambda: pubsub.connections == 0)  # nothing left to listen to: all closed


async def test_the_last_release_of_a_channel_unsubscribes_it_on_redis(
    client: RedisCluster,
) -> None:
    pubsub, tag = PubSub(client), uuid.uuid4().hex
    ch, neighbour = channel(tag), channel(tag)  # one slot: one connection, which stays open
    owner = owner_of(client, ch)

    async def subscribers() -> int:
        reply = await on_node(owner, "PUBSUB", "SHARDNUMSUB", ch)
        return int(reply[1])

    async with pubsub.subscribe(neighbour, Posted):
        first = await pubsub.subscribe(ch, Posted).__aenter__()
        second = await pubsub.subscribe(ch, Posted).__aenter__()
        assert await subscribers() == 1  # one Redis subscription for both local ones
        await first.aclose()
        await asyncio.sleep(0.2)
        assert await subscribers() == 1
        assert ch.encode() in await on_node(owner, "PUBSUB", "SHARDCHANNELS", ch)
        await pubsub.publish(ch, Posted(1))
        assert await second.get(timeout=2) == Posted(1)
        await second.aclose()
        async with asyncio.timeout(5):
            while await subscribers() != 0:  # noqa: ASYNC110 - polling Redis
                await asyncio.sleep(0.05)
        assert await on_node(owner, "PUBSUB", "SHARDCHANNELS", ch) == []
        assert pubsub.connections == 1  # gone by SUNSUBSCRIBE, not by closing the connection
        assert int((await on_node(owner, "PUBSUB", "SHARDNUMSUB", neighbour))[1]) == 1


async def test_a_stalled_consumer_does_not_delay_the_others_on_its_connection(
    client: RedisCluster,
) -> None:
    pubsub = PubSub(client, overflow_timeout=60)
    tag = uuid.uuid4().hex
    stalled_ch, busy_ch = channel(tag), channel(tag)  # one slot: one connection
    async with (
        pubsub.subscribe(stalled_ch, Posted, queue_size=4) as stalled,
        pubsub.subscribe(busy_ch, Posted) as busy,
    ):
        assert pubsub.connections == 1
        await pubsub.publish_many([(stalled_ch, Posted(n)) for n in range(7)])  # queue + overflow
        for seq in range(20):
            await pubsub.publish(busy_ch, Posted(seq))
            assert await busy.get(timeout=5) == Posted(seq)  # never read, the other is not waited
        assert [await stalled.get(timeout=1) for _ in range(7)] == [Posted(n) for n in range(7)]
        assert stalled.gaps == busy.gaps == 0


async def test_subscriptions_entered_together_are_batched_and_all_live(
    client: RedisCluster,
) -> None:
    pubsub = PubSub(client, name=unique_name())
    channels = [channel() for _ in range(200)]
    async with contextlib.AsyncExitStack() as stack:
        subs = await asyncio.gather(
            *(stack.enter_async_context(pubsub.subscribe(ch, Posted)) for ch in channels)
        )
        assert all(pubsub.is_live(ch) for ch in channels)
        await pubsub.publish_many([(ch, Posted(i)) for i, ch in enumerate(channels)])
        assert [await sub.get(timeout=2) for sub in subs] == [Posted(i) for i in range(200)]


# --- breaking the cluster -------------------------------------------------------------------


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
async def spread(
    cluster: LocalCluster, count: int
) -> AsyncIterator[tuple[AnyRedis, PubSub, dict[str, Subscription[Posted]]]]:
    """A client of ``cluster`` with ``count`` live subscriptions spread over the primaries."""
    cluster.up()
    client = await create_client(RedisSettings(url=cluster.url()))
    try:
        pubsub = PubSub(client, health_interval=0.5)
        async with contextlib.AsyncExitStack() as stack:
            channels = [channel() for _ in range(count)]
            subs = await asyncio.gather(
                *(stack.enter_async_context(pubsub.subscribe(ch, Posted)) for ch in channels)
            )
            yield client, pubsub, dict(zip(channels, subs, strict=True))
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_killing_a_primary_re_homes_only_its_channels(
    disposable_cluster: LocalCluster,
) -> None:
    async with spread(disposable_cluster, 30) as (client, pubsub, subs):
        assert isinstance(client, RedisCluster)
        victim = owner_of(client, next(iter(subs)))
        on_victim = {ch for ch in subs if owner_of(client, ch).name == victim.name}
        disposable_cluster.stop_node(int(victim.port), sig=signal.SIGKILL)

        for ch in on_victim:  # publish until they get through: after the replica's promotion
            assert (await delivered(pubsub, ch, subs[ch])).seq >= 1
        for ch, sub in subs.items():
            if ch not in on_victim:
                await pubsub.publish(ch, Posted(99))
                assert await sub.get(timeout=2) == Posted(99)
        assert all(subs[ch].gaps >= 1 for ch in on_victim)
        assert all(sub.gaps == 0 for ch, sub in subs.items() if ch not in on_victim)
        assert owner_of(client, next(iter(on_victim))).name != victim.name


async def migrate_slot(client: RedisCluster, slot: int, source: Any, target: Any) -> None:
    """Move ``slot`` from ``source`` to ``target`` the way ``redis-cli --cluster reshard`` does."""
    source_id = (await on_node(source, "CLUSTER", "MYID")).decode()
    target_id = (await on_node(target, "CLUSTER", "MYID")).decode()
    await on_node(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    await on_node(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    while keys := await on_node(source, "CLUSTER", "GETKEYSINSLOT", slot, 100):
        await on_node(source, "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
    await on_node(target, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
    await on_node(source, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
    for node in client.get_primaries():
        if node.name not in (source.name, target.name):
            await on_node(node, "CLUSTER", "SETSLOT", slot, "NODE", target_id)


@pytest.mark.slow
async def test_migrating_a_channels_slot_re_homes_that_channel_alone(
    disposable_cluster: LocalCluster,
) -> None:
    async with spread(disposable_cluster, 20) as (client, pubsub, subs):
        assert isinstance(client, RedisCluster)
        moved = next(iter(subs))
        source = owner_of(client, moved)
        target = next(n for n in client.get_primaries() if n.name != source.name)
        await migrate_slot(client, client.keyslot(moved), source, target)

        assert (await delivered(pubsub, moved, subs[moved])).seq >= 1
        assert subs[moved].gaps == 1
        assert owner_of(client, moved).name == target.name
        reply = await on_node(target, "PUBSUB", "SHARDNUMSUB", moved)
        assert int(reply[1]) == 1  # subscribed on its new owner
        for ch, sub in subs.items():
            if ch != moved:
                await pubsub.publish(ch, Posted(99))
                assert await sub.get(timeout=2) == Posted(99)
                assert sub.gaps == 0


async def test_a_subscribe_refused_with_moved_is_made_on_the_slots_owner(
    client: RedisCluster,
) -> None:
    pubsub, ch = PubSub(client), channel()
    slot, owner = client.keyslot(ch), owner_of(client, ch)
    wrong = next(n for n in client.get_primaries() if n.name != owner.name)
    client.nodes_manager.slots_cache[slot] = [wrong]  # a stale map: the slot "is" elsewhere
    async with pubsub.subscribe(ch, Posted) as sub:
        assert owner_of(client, ch).name == owner.name  # refreshed after the MOVED
        assert int((await on_node(owner, "PUBSUB", "SHARDNUMSUB", ch))[1]) == 1
        await pubsub.publish(ch, Posted(1))
        assert await sub.get(timeout=2) == Posted(1)
        assert sub.gaps == 0  # it was never live before: nothing was missed


async def test_a_single_node_client_multiplexes_plain_channels(redis_url: str) -> None:
    client = await create_client(RedisSettings(url=redis_url, cluster=False))
    try:
        name = unique_name()
        pubsub, recorder = PubSub(client, name=name), Recorder()
        channels = [channel() for _ in range(50)]
        await pubsub.listen(channels, Posted, recorder)
        assert pubsub.command == "PUBLISH" and pubsub.connections == 1
        clients = await client.client_list()
        assert sum(1 for c in clients if c.get("name") == name) == 1
        for i, ch in enumerate(channels):
            await pubsub.publish(ch, Posted(i))
        await until(lambda: all(recorder.messages.get(ch) == [i] for i, ch in enumerate(channels)))
        pubsub.unlisten(channels, recorder)
        await until(lambda: pubsub.connections == 0)
    finally:
        await client.aclose()
