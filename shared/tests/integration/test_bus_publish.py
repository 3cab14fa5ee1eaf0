"""Publishing: partition by key, safe trimming, and context passed from handled to published."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from contracts.base import Envelope, Event, Message
from contracts.topology import StreamSpec
from shared.bus import Consumer, ConsumerSettings, Publisher, wire
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = pytest.mark.integration


class Note(Event, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "bustest.note"
    STREAM: ClassVar[str] = "bustest.events"
    KEY: ClassVar[str | None] = "key"

    key: str
    n: int


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


async def entries(client: AnyRedis, key: str) -> list[tuple[str, wire.Fields]]:
    rows: Any = await client.xrange(key)
    return [(wire.as_text(i), f) for i, f in rows]


def note(fields: wire.Fields) -> Note:
    decoded = wire.decode_payload(Note, fields)
    assert isinstance(decoded, Note)
    return decoded


def new_spec(*, partitions: int = 4, max_len: int = 100_000) -> StreamSpec:
    owner = f"t{uuid.uuid4().hex[:10]}"
    return StreamSpec(name=f"{owner}.events", owner=owner, partitions=partitions, max_len=max_len)


async def test_one_keys_messages_land_in_one_partition_in_publish_order(client: AnyRedis) -> None:
    spec = new_spec()
    pub = Publisher(client, producer="bustest", stream_of=lambda _: spec)
    await asyncio.gather(*(pub.publish(Note(key="conv-1", n=i)) for i in range(50)))
    numbers = [note(f).n for _, f in await entries(client, spec.key_for("conv-1"))]
    assert numbers == list(range(50))
    others = [p for p in range(spec.partitions) if p != spec.partition_for("conv-1")]
    assert [await client.xlen(spec.key(p)) for p in others] == [0] * len(others)


async def test_trimming_never_removes_an_entry_a_group_has_not_acknowledged(
    client: AnyRedis,
) -> None:
    spec = new_spec(partitions=1, max_len=10)
    key = spec.key(0)
    pub = Publisher(client, producer="bustest", stream_of=lambda _: spec, trim_interval=3600)
    await client.xgroup_create(key, "slow", "0", mkstream=True)
    await client.xgroup_create(key, "fast", "0", mkstream=True)
    ids = [await pub.publish(Note(key="k", n=i)) for i in range(40)]
    await client.xreadgroup("slow", "c", {key: ">"}, count=25)  # 25 pending, 15 unread
    await client.xack(key, "slow", *ids[:5])
    await client.xreadgroup("fast", "c", {key: ">"})
    await client.xack(key, "fast", *ids)

    await pub.trim(key, spec)
    left = [i for i, _ in await entries(client, key)]
    assert left == ids[5:], "only entries acknowledged by every group may go"

    await client.xack(key, "slow", *ids[5:25])
    await pub.trim(key, spec)
    assert [i for i, _ in await entries(client, key)] == ids[25:], "unread stay"

    await client.xreadgroup("slow", "c", {key: ">"})
    await client.xack(key, "slow", *ids)
    await pub.trim(key, spec)
    assert [i for i, _ in await entries(client, key)] == ids[30:], "retention: 10"


async def test_what_a_handler_publishes_carries_the_correlation_and_causation_of_its_message(
    client: AnyRedis,
) -> None:
    source, sink = new_spec(), new_spec()
    streams: dict[type[Message], StreamSpec] = {Note: source}
    forwarded: list[Envelope] = []

    class Forwarded(Event, frozen=True, kw_only=True):
        TYPE: ClassVar[str] = "bustest.forwarded"
        STREAM: ClassVar[str] = "bustest.more"
        KEY: ClassVar[str | None] = "key"
        key: str

    pub = Publisher(client, producer="bustest", stream_of=lambda c: source if c is Note else sink)

    async def forward(msg: Note, env: Envelope) -> None:
        await pub.publish(Forwarded(key=msg.key))

    async def record(msg: Forwarded, env: Envelope) -> None:
        forwarded.append(env)

    settings = ConsumerSettings(block_ms=100, lease_ttl=1.5)
    first = Consumer(
        client,
        group="one",
        handlers={Note: forward},
        settings=settings,
        stream_of=lambda c: streams.get(c, sink),
    )
    second = Consumer(
        client,
        group="two",
        handlers={Forwarded: record},
        settings=settings,
        stream_of=lambda _: sink,
    )
    origin = pub.envelope_for(Note(key="k", n=1))
    async with first, second:
        await pub.publish(Note(key="k", n=1), envelope=origin)
        async with asyncio.timeout(5):
            while not forwarded:  # noqa: ASYNC110 - polls what other tasks change
                await asyncio.sleep(0.02)
    assert forwarded[0].correlation_id == origin.correlation_id
    assert forwarded[0].causation_id == origin.id
