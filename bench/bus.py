"""The event bus vs FastStream 0.7 on the same cluster, in one run.

    uv run python bench/bus.py              # starts its own cluster on ports 7721-7726
    PARLEY_BENCH_REDIS=redis://host:port uv run python bench/bus.py

Figures (ratios travel between machines, absolute rates do not):
- ``publish_per_s`` vs ``faststream_publish_per_s``: N messages from 64 concurrent publishers,
  ``Publisher.publish`` (coalesced pipelines) vs ``broker.publish(..., stream=...)``; target >= 3x;
- ``consume_per_s`` vs ``faststream_consume_per_s``: N messages already in a 4-partition stream,
  consumed by one process: our ``Consumer`` (per-message handlers, per-key order, at-least-once,
  deduplication marks) vs FastStream's default stream subscriber (one per partition key, consumer
  group, default settings); target >= 10x;
- ``p50_ms`` / ``p99_ms``: publish-to-handled latency of our bus at a fixed 1,000 messages/s
  (target p99 <= 5 ms).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import msgspec
from faststream.redis import RedisClusterBroker, StreamSub

from contracts.base import Envelope, Event
from contracts.topology import StreamSpec
from parley.cluster import bench_cluster
from shared.bus import Consumer, ConsumerSettings, Publisher
from shared.redis.client import AnyRedis, RedisSettings, create_client

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7721-7726")
N = int(os.environ.get("PARLEY_BENCH_MESSAGES", "20000"))
PUBLISHERS = 64
PARTITIONS = 4
KEYS = 200
RATE, LATENCY_SECONDS = 1000, 3


class Posted(Event, frozen=True, kw_only=True):
    """A chat-message-sized event."""

    TYPE: ClassVar[str] = "bench.posted"
    STREAM: ClassVar[str] = "bench.events"
    KEY: ClassVar[str | None] = "conversation_id"

    conversation_id: str
    seq: int
    sender_id: str
    body: str
    sent_ns: int = 0


def message(i: int, sent_ns: int = 0) -> Posted:
    return Posted(
        conversation_id=f"c{i % KEYS}",
        seq=i,
        sender_id=f"u{i % 97}",
        body="hello there, this is a chat message " * 2,
        sent_ns=sent_ns,
    )


def new_spec() -> StreamSpec:
    owner = f"bench{uuid.uuid4().hex[:8]}"
    return StreamSpec(name=f"{owner}.events", owner=owner, partitions=PARTITIONS, max_len=10**7)


async def concurrently(count: int, send: Any) -> float:
    """Messages per second of ``send(i)`` for i < count, from PUBLISHERS concurrent tasks."""

    async def worker(offset: int) -> None:
        for i in range(offset, count, PUBLISHERS):
            await send(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker(o) for o in range(PUBLISHERS)))
    return count / (time.perf_counter() - started)


async def until(check: Any, within: float = 120) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls what other tasks change
            await asyncio.sleep(0.005)


async def ours_consume(client: AnyRedis, spec: StreamSpec) -> float:
    handled = 0

    async def handle(msg: Posted, env: Envelope) -> None:
        nonlocal handled
        handled += 1

    settings = ConsumerSettings(batch=512, block_ms=50, max_in_flight=4096, max_concurrency=256)
    consumer = Consumer(
        client,
        group="bench",
        handlers={Posted: handle},
        settings=settings,
        stream_of=lambda _: spec,
    )
    started = time.perf_counter()
    await consumer.start()
    await until(lambda: handled >= N)
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return N / elapsed


async def faststream_consume(url: str, client: AnyRedis, spec: StreamSpec) -> float:
    broker = RedisClusterBroker(url)
    handled = 0
    for key in [spec.key(p) for p in range(spec.partitions)]:
        await client.xgroup_create(key, "fs", "0", mkstream=True)

        @broker.subscriber(stream=StreamSub(key, group="fs", consumer="c1"))
        async def handle(body: Any) -> None:
            nonlocal handled
            handled += 1

    started = time.perf_counter()
    await broker.start()
    await until(lambda: handled >= N)
    elapsed = time.perf_counter() - started
    await broker.stop()
    return N / elapsed


async def latency(client: AnyRedis, seconds: float = LATENCY_SECONDS) -> list[float]:
    spec = new_spec()
    samples: list[float] = []

    async def handle(msg: Posted, env: Envelope) -> None:
        samples.append((time.time_ns() - msg.sent_ns) / 1e6)

    settings = ConsumerSettings(block_ms=1000)
    publisher = Publisher(client, producer="bench", stream_of=lambda _: spec)
    total = int(RATE * seconds)
    async with Consumer(
        client,
        group="bench",
        handlers={Posted: handle},
        settings=settings,
        stream_of=lambda _: spec,
    ):
        await asyncio.sleep(0.3)
        tasks = []
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(publisher.publish(message(i, time.time_ns()))))
        await asyncio.gather(*tasks)
        await until(lambda: len(samples) >= total, within=30)
    return samples


async def run(url: str) -> dict[str, float | int]:
    client = await create_client(RedisSettings(url=url, max_connections=512))
    # Latency first, while the process is fresh (no garbage from the throughput phases).
    await latency(client, 1)  # warm-up (a fresh cluster is still syncing replicas): discarded
    samples = sorted(await latency(client))
    ours, theirs = new_spec(), new_spec()
    publisher = Publisher(client, producer="bench", stream_of=lambda _: ours)
    publish_rate = await concurrently(N, lambda i: publisher.publish(message(i)))

    broker = RedisClusterBroker(url)
    await broker.connect()
    # Warm its pool up first: concurrent first calls race while connecting in redis-py 8.1.
    for i in range(PUBLISHERS):
        await broker.publish({"warmup": i}, stream=f"{theirs.owner}:warmup:{{{i}}}")
    fs_publish_rate = await concurrently(
        N,
        lambda i: broker.publish(
            msgspec.to_builtins(message(i)), stream=theirs.key_for(f"c{i % KEYS}")
        ),
    )
    await broker.stop()

    consume_rate = await ours_consume(client, ours)
    fs_consume_rate = await faststream_consume(url, client, theirs)
    await client.aclose()
    return {
        "messages": N,
        "publish_per_s": round(publish_rate),
        "faststream_publish_per_s": round(fs_publish_rate),
        "publish_vs_faststream": round(publish_rate / fs_publish_rate, 2),
        "consume_per_s": round(consume_rate),
        "faststream_consume_per_s": round(fs_consume_rate),
        "consume_vs_faststream": round(consume_rate / fs_consume_rate, 2),
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
    }


def main() -> None:
    # A fresh, empty cluster: no AOF left to load from an earlier run.
    with bench_cluster(ROOT / ".parley", PORTS, fresh=True) as url:
        figures = asyncio.run(run(url))
    print(f"{'figure':<28}{'ours':>12}{'faststream':>12}{'ratio':>8}")
    print(
        f"{'publish msg/s':<28}{figures['publish_per_s']:>12}"
        f"{figures['faststream_publish_per_s']:>12}{figures['publish_vs_faststream']:>8}"
    )
    print(
        f"{'consume msg/s':<28}{figures['consume_per_s']:>12}"
        f"{figures['faststream_consume_per_s']:>12}{figures['consume_vs_faststream']:>8}"
    )
    print(f"{'latency @1000/s p50 / p99':<28}{figures['p50_ms']:>9} ms{figures['p99_ms']:>9} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
