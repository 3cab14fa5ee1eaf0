"""A consumer through a whole-cluster outage: it keeps its logs short and resumes by itself."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import ClassVar

import pytest

from contracts.base import Envelope, Event
from contracts.topology import StreamSpec
from parley.cluster import LocalCluster
from shared.bus import Consumer, ConsumerSettings, Publisher
from shared.redis.client import RedisSettings, create_client

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Tick(Event, frozen=True, kw_only=True):
    """A test event."""

    TYPE: ClassVar[str] = "outagetest.tick"
    STREAM: ClassVar[str] = "outagetest.events"
    KEY: ClassVar[str | None] = "key"

    key: str
    seq: int


async def test_a_consumer_logs_an_outage_once_per_partition_and_resumes_after_it(
    disposable_cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    disposable_cluster.up()
    owner = f"t{uuid.uuid4().hex[:10]}"
    spec = StreamSpec(name=f"{owner}.events", owner=owner, partitions=4, max_len=10_000)
    # Leases outlive the outage, so the same workers retry all through it.
    settings = ConsumerSettings(batch=16, block_ms=100, lease_ttl=20.0)
    client = await create_client(RedisSettings(url=disposable_cluster.url()))
    seen: list[int] = []

    async def handle(msg: Tick, env: Envelope) -> None:
        seen.append(msg.seq)

    consumer = Consumer(
        client, group="reader", handlers={Tick: handle}, settings=settings, stream_of=lambda _: spec
    )
    publisher = Publisher(client, producer="outagetest", stream_of=lambda _: spec)
    try:
        async with consumer:
            await publisher.publish(Tick(key="a", seq=0))
            async with asyncio.timeout(10):
                while not seen:  # noqa: ASYNC110 - the consumer's tasks fill it
                    await asyncio.sleep(0.05)

            with caplog.at_level(logging.INFO, logger="shared.bus.partition"):
                disposable_cluster.down()
                await asyncio.sleep(8)  # several attempts per partition
                disposable_cluster.up()
                async with asyncio.timeout(30):
                    while 1 not in seen:
                        try:
                            await publisher.publish(Tick(key="a", seq=1))
                        except Exception:
                            await asyncio.sleep(0.5)
                            continue
                        await asyncio.sleep(1.0)
                await asyncio.sleep(2.5)  # past the longest retry delay: every worker reads again

            partition = [r for r in caplog.records if r.name == "shared.bus.partition"]
            tracebacks = [r for r in partition if r.exc_info]
            # One traceback per partition worker, not one per attempt; a line when it reads again.
            assert 1 <= len(tracebacks) <= spec.partitions
            assert all(r.levelno == logging.ERROR for r in tracebacks)
            assert len(partition) <= 3 * spec.partitions
            assert any("again after" in r.getMessage() for r in partition)
    finally:
        await publisher.aclose()
        await client.aclose()
