"""Consuming: per-key order, retries, dead letters, foreign entries, deduplication, lost groups."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import pytest

from contracts.base import Envelope, Event, Message
from contracts.topology import StreamSpec, partition_of
from shared.bus import (
    Consumer,
    ConsumerSettings,
    DeadLetters,
    Provenance,
    Publisher,
    naming,
    wire,
)
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = pytest.mark.integration

FAST = ConsumerSettings(
    batch=64, block_ms=100, max_deliveries=3, backoff_base=0.01, backoff_max=0.05, lease_ttl=1.5
)


class Ping(Event, frozen=True, kw_only=True):
    """A test event: ``seq`` counts per ``key``."""

    TYPE: ClassVar[str] = "bustest.ping"
    STREAM: ClassVar[str] = "bustest.events"
    KEY: ClassVar[str | None] = "key"

    key: str
    seq: int
    poison: bool = False


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


@pytest.fixture
def spec() -> StreamSpec:
    owner = f"t{uuid.uuid4().hex[:10]}"
    return StreamSpec(name=f"{owner}.events", owner=owner, partitions=4, max_len=100_000)


def consumer(
    client: AnyRedis,
    spec: StreamSpec,
    handler: Callable[[Any, Envelope], Awaitable[Any]],
    *,
    group: str = "reader",
    settings: ConsumerSettings = FAST,
) -> Consumer:
    return Consumer(
        client, group=group, handlers={Ping: handler}, settings=settings, stream_of=lambda _: spec
    )


def publisher(client: AnyRedis, spec: StreamSpec) -> Publisher:
    return Publisher(client, producer="bustest", stream_of=lambda _: spec)


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls what other tasks change
            await asyncio.sleep(0.02)


async def test_each_keys_messages_are_handled_once_and_in_order(
    client: AnyRedis, spec: StreamSpec
) -> None:
    seen: dict[str, list[int]] = {}

    async def handle(msg: Ping, env: Envelope) -> None:
        seen.setdefault(msg.key, []).append(msg.seq)
        await asyncio.sleep(0)

    pub = publisher(client, spec)
    await asyncio.gather(
        *(pub.publish(Ping(key=f"k{k}", seq=s)) for s in range(30) for k in range(10))
    )
    async with consumer(client, spec, handle):
        await eventually(lambda: sum(map(len, seen.values())) >= 300)
    assert seen == {f"k{k}": list(range(30)) for k in range(10)}


async def test_a_poison_message_is_dead_lettered_with_provenance_and_redriven_after_a_fix(
    client: AnyRedis, spec: StreamSpec
) -> None:
    attempts = 0
    fixed = False
    handled: list[int] = []

    async def handle(msg: Ping, env: Envelope) -> None:
        nonlocal attempts
        if msg.poison and not fixed:
            attempts += 1
            raise ValueError("cannot digest this")
        handled.append(msg.seq)

    pub = publisher(client, spec)
    poison_id = await pub.publish(Ping(key="a", seq=1, poison=True))
    await pub.publish(Ping(key="a", seq=2))
    dlq = DeadLetters(client, spec)
    async with consumer(client, spec, handle):
        await eventually(lambda: handled == [2])
        letters = await dlq.entries()
    assert attempts == FAST.max_deliveries
    assert len(letters) == 1
    prov = Provenance.from_fields(letters[0][1])
    assert (prov.stream, prov.partition, prov.entry_id) == (
        spec.name,
        spec.partition_for("a"),
        poison_id,
    )
    assert (prov.group, prov.attempts) == ("reader", FAST.max_deliveries)
    assert "cannot digest this" in prov.error
    assert prov.first_failure <= prov.last_failure

    fixed = True
    await dlq.redrive(letters[0][0])
    async with consumer(client, spec, handle):
        await eventually(lambda: handled == [2, 1])
    assert await dlq.size() == 0


async def test_a_foreign_entry_is_dead_lettered_as_undecodable_and_the_consumer_goes_on(
    client: AnyRedis, spec: StreamSpec, redis_url: str
) -> None:
    handled: list[int] = []

    async def handle(msg: Ping, env: Envelope) -> None:
        handled.append(msg.seq)

    pub = publisher(client, spec)
    key = spec.key_for("a")
    # An entry written by hand, as an operator or a foreign producer would.
    cli = shutil.which("redis-cli")
    if cli is not None:
        proc = await asyncio.create_subprocess_exec(
            cli, "-u", redis_url, "-c", "XADD", key, "*", "event", "signup", stdout=PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0 and b"-" in out
    else:
        await client.execute_command("XADD", key, "*", "event", "signup")
    await pub.publish(Ping(key="a", seq=7))
    dlq = DeadLetters(client, spec)
    async with consumer(client, spec, handle):
        await eventually(lambda: handled == [7])
        letters = await dlq.entries()
    assert len(letters) == 1
    fields = letters[0][1]
    assert Provenance.from_fields(fields).error.startswith("decode:")
    assert fields[b"event"] == b"signup"


@pytest.mark.parametrize("marks", ["dedupe", "off", "idempotent type"])
async def test_a_copy_of_a_handled_message_is_skipped_only_where_marks_are_kept(
    client: AnyRedis, spec: StreamSpec, marks: str
) -> None:
    handled: list[str] = []

    async def handle(msg: Ping, env: Envelope) -> None:
        handled.append(env.id)

    settings = {
        "dedupe": FAST,
        "off": FAST.model_copy(update={"dedupe": False}),
        # Marks kept for the group, but not for this type (its handler is idempotent).
        "idempotent type": FAST.model_copy(update={"idempotent": frozenset({Ping.TYPE})}),
    }[marks]
    dedupe = marks == "dedupe"
    pub = publisher(client, spec)
    msg = Ping(key="a", seq=1)
    env = pub.envelope_for(msg)
    await pub.publish(msg, envelope=env)
    await pub.publish(msg, envelope=env)  # a producer retry: same message id, new entry
    async with consumer(client, spec, handle, settings=settings):
        await eventually(lambda: len(handled) == 1)  # the copy read with it is dropped either way
        await pub.publish(msg, envelope=env)  # a copy arriving after the message ran
        await pub.publish(Ping(key="a", seq=2))
        await eventually(lambda: len(handled) == (2 if dedupe else 3))
        await asyncio.sleep(0.2)
    # With marks the late copy found the group's "handled" mark; without, none was written.
    assert handled.count(env.id) == (1 if dedupe else 2)
    assert (await client.xpending(spec.key_for("a"), "reader"))["pending"] == 0
    mark = naming.dedupe_prefix(spec, "reader", partition_of("a", spec.partitions)) + env.id
    assert await client.exists(mark) == int(dedupe)


async def test_a_deleted_group_and_a_deleted_stream_are_recreated(
    client: AnyRedis, spec: StreamSpec
) -> None:
    handled: list[int] = []

    async def handle(msg: Ping, env: Envelope) -> None:
        handled.append(msg.seq)

    pub = publisher(client, spec)
    key = spec.key_for("a")
    async with consumer(client, spec, handle):
        await pub.publish(Ping(key="a", seq=1))
        await eventually(lambda: handled == [1])
        await client.xgroup_destroy(key, "reader")
        await pub.publish(Ping(key="a", seq=2))
        await eventually(lambda: handled == [1, 2])
        await client.delete(key)
        await pub.publish(Ping(key="a", seq=3))
        await eventually(lambda: handled == [1, 2, 3])
    assert [wire.as_text(g["name"]) for g in await client.xinfo_groups(key)] == ["reader"]


async def test_two_instances_split_the_partitions_and_a_leaver_hands_its_share_over(
    client: AnyRedis, spec: StreamSpec
) -> None:
    seen: dict[str, list[int]] = {}

    async def handle(msg: Ping, env: Envelope) -> None:
        seen.setdefault(msg.key, []).append(msg.seq)

    first = consumer(client, spec, handle)
    second = consumer(client, spec, handle)
    await first.start()
    await second.start()
    await eventually(lambda: len(first.owned[spec.name]) == 2 and len(second.owned[spec.name]) == 2)
    assert not first.owned[spec.name] & second.owned[spec.name]
    await second.stop()
    await eventually(lambda: len(first.owned[spec.name]) == 4)
    pub = publisher(client, spec)
    await asyncio.gather(*(pub.publish(Ping(key=f"k{k}", seq=0)) for k in range(20)))
    await eventually(lambda: len(seen) == 20)
    await first.stop()


def _unused(_: Message) -> None:  # keeps the import list honest for readers
    pass


async def test_different_keys_run_concurrently_up_to_the_in_flight_bound(
    client: AnyRedis, spec: StreamSpec
) -> None:
    running, peak, done = 0, 0, 0
    release = asyncio.Event()

    async def handle(msg: Ping, env: Envelope) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        done += 1

    pub = publisher(client, spec)
    await asyncio.gather(*(pub.publish(Ping(key=f"k{k}", seq=0)) for k in range(20)))
    bounded = FAST.model_copy(update={"max_in_flight": 5})
    async with consumer(client, spec, handle, settings=bounded):
        await eventually(lambda: running == 5)
        await asyncio.sleep(0.2)
        assert peak == 5
        release.set()
        await eventually(lambda: done == 20)
