"""Operator tools against running consumers: replay re-runs for one group, rewind re-reads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import ClassVar

import pytest
from prometheus_client import CollectorRegistry

from contracts.base import Envelope, Event
from contracts.topology import StreamSpec
from shared.bus import BusMetrics, Consumer, ConsumerSettings, Publisher, admin
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = pytest.mark.integration

FAST = ConsumerSettings(block_ms=100, lease_ttl=1.5, backoff_base=0.01, max_deliveries=2)


class Tick(Event, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "bustest.tick"
    STREAM: ClassVar[str] = "bustest.events"
    KEY: ClassVar[str | None] = "key"

    key: str
    n: int


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


@pytest.fixture
def spec() -> StreamSpec:
    owner = f"t{uuid.uuid4().hex[:10]}"
    return StreamSpec(name=f"{owner}.events", owner=owner, partitions=2, max_len=100_000)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[int] = []

    async def __call__(self, msg: Tick, env: Envelope) -> None:
        self.seen.append(msg.n)


def consumer(client: AnyRedis, spec: StreamSpec, group: str, handler: Recorder) -> Consumer:
    return Consumer(
        client, group=group, handlers={Tick: handler}, settings=FAST, stream_of=lambda _: spec
    )


async def eventually(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not check():  # noqa: ASYNC110 - polls what other tasks change
            await asyncio.sleep(0.02)


async def test_replay_reruns_a_range_through_one_group_only(
    client: AnyRedis, spec: StreamSpec
) -> None:
    pub = Publisher(client, producer="bustest", stream_of=lambda _: spec)
    ids = [await pub.publish(Tick(key="a", n=n)) for n in range(5)]
    target, bystander = Recorder(), Recorder()
    async with (
        consumer(client, spec, "target", target),
        consumer(client, spec, "bystander", bystander),
    ):
        await eventually(lambda: target.seen == bystander.seen == [0, 1, 2, 3, 4])
        assert (
            await admin.replay(client, spec, start=ids[1], end=ids[2], group="target", dry_run=True)
            == 2
        )
        await asyncio.sleep(0.2)
        assert target.seen == [0, 1, 2, 3, 4], "a dry run changes nothing"
        await admin.replay(client, spec, start=ids[1], end=ids[2], group="target")
        await eventually(lambda: target.seen == [0, 1, 2, 3, 4, 1, 2])
        await pub.publish(Tick(key="a", n=5))
        await eventually(lambda: bystander.seen[-1:] == [5])
    assert bystander.seen == [0, 1, 2, 3, 4, 5]


async def test_rewind_makes_a_group_handle_again_what_it_already_handled(
    client: AnyRedis, spec: StreamSpec
) -> None:
    pub = Publisher(client, producer="bustest", stream_of=lambda _: spec)
    ids = [await pub.publish(Tick(key="a", n=n)) for n in range(4)]
    recorder = Recorder()
    async with consumer(client, spec, "reader", recorder):
        await eventually(lambda: recorder.seen == [0, 1, 2, 3])
    dry = await admin.rewind(client, spec, "reader", ids[2], dry_run=True)
    assert sum(r.rerun for r in dry) == 2
    rows = await admin.rewind(client, spec, "reader", ids[2])
    assert [r.rerun for r in rows] == [r.rerun for r in dry]
    async with consumer(client, spec, "reader", recorder):
        await eventually(lambda: recorder.seen == [0, 1, 2, 3, 2, 3])


async def test_metrics_report_lag_pending_and_dead_letters_per_partition(
    client: AnyRedis, spec: StreamSpec
) -> None:
    registry = CollectorRegistry()
    metrics = BusMetrics(registry)
    pub = Publisher(client, producer="bustest", stream_of=lambda _: spec)
    for n in range(3):
        await pub.publish(Tick(key="a", n=n))
    p = str(spec.partition_for("a"))
    await client.xgroup_create(spec.key(int(p)), "watcher", "0")
    await metrics.refresh(client, spec, "watcher")
    labels = {"stream": spec.name, "partition": p, "group": "watcher"}
    assert registry.get_sample_value("parley_bus_lag", labels) == 3

    async def failing(msg: Tick, env: Envelope) -> None:
        raise RuntimeError("nope")

    async with Consumer(
        client,
        group="watcher",
        handlers={Tick: failing},
        settings=FAST,
        stream_of=lambda _: spec,
        metrics=metrics,
    ):
        await eventually(
            lambda: (registry.get_sample_value("parley_bus_dead_lettered_total", labels) or 0) >= 3
        )
    await metrics.refresh(client, spec, "watcher")
    assert registry.get_sample_value("parley_bus_retries_total", labels) == 3
    assert registry.get_sample_value("parley_bus_dlq_size", {"stream": spec.name}) == 3
    assert registry.get_sample_value("parley_bus_pending", labels) == 0
    assert registry.get_sample_value("parley_bus_lag", labels) == 0


async def test_handler_time_is_recorded_per_message_type(
    client: AnyRedis, spec: StreamSpec
) -> None:
    registry = CollectorRegistry()
    metrics = BusMetrics(registry)
    pub = Publisher(client, producer="bustest", stream_of=lambda _: spec)
    for n in range(3):
        await pub.publish(Tick(key="b", n=n))
    seen: list[int] = []

    async def handle(msg: Tick, env: Envelope) -> None:
        seen.append(msg.n)

    async with Consumer(
        client,
        group="timed",
        handlers={Tick: handle},
        settings=FAST,
        metrics=metrics,
        stream_of=lambda _: spec,
    ):
        await eventually(lambda: len(seen) == 3)
    labels = {"stream": spec.name, "group": "timed", "type": Tick.TYPE}
    assert registry.get_sample_value("parley_bus_handler_seconds_count", labels) == 3
    assert (registry.get_sample_value("parley_bus_handler_seconds_sum", labels) or 0) > 0
