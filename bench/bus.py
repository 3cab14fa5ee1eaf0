"""The event bus against FastStream in its fastest mode and a plain-loop ceiling, in one run.

    uv run python bench/bus.py              # starts its own cluster on ports 7721-7726
    PARLEY_BENCH_REDIS=redis://host:port uv run python bench/bus.py
    PARLEY_BENCH_SIZES=5000,20000,50000 PARLEY_BENCH_RATES=250,1000,2000 uv run python bench/bus.py

Baselines, as a performance-minded user configures them (every one on the same cluster, same run):
- FastStream 0.7 with logging off (``RedisClusterBroker(url, logger=None)``) and its batch stream
  subscriber (``StreamSub(key, group=..., batch=True, max_records=500)``, one per partition),
  publishing with ``broker.publish(..., stream=...)``;
- the ceiling: a plain loop per partition of ``XREADGROUP COUNT 500``, msgspec decoding of our
  entries, the batch's handlers run concurrently, and one ``XACK`` per batch. It has none of the
  bus's guarantees (per-key order, retries with dead letters, leases, deduplication, deadlines).

Figures (ratios travel between machines, absolute rates do not), for each size in the curve:
- ``publish_vs_faststream``: N messages from 64 concurrent publishers, ``Publisher.publish``
  (coalesced pipelines) vs ``broker.publish``; target >= 3x;
- ``consume_vs_faststream_batch`` and ``consume_vs_ceiling``: N messages already in a
  4-partition stream, consumed by one process (our ``Consumer``: per-message handlers, per-key
  order, at-least-once, retries, dead letters); targets >= 1.5x and >= 0.6x;
- ``p50_ms`` / ``p99_ms``: publish-to-handled latency of our bus at fixed rates (target p99 <= 5 ms
  at 1,000 messages/s).
The top-level figures are those of the middle size (default 20,000) and of 1,000 messages/s.
"""

from __future__ import annotations

import asyncio
import json
import os
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
from shared.bus.wire import decode_envelope, decode_payload
from shared.redis.client import AnyRedis, RedisSettings, create_client

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7721-7726")
SIZES = [int(n) for n in os.environ.get("PARLEY_BENCH_SIZES", "5000,20000,50000").split(",")]
RATES = [int(n) for n in os.environ.get("PARLEY_BENCH_RATES", "250,1000,2000").split(",")]
PUBLISHERS = 64
PARTITIONS = 4
KEYS = 200
BATCH = 500
LATENCY_SECONDS = 3


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


def fast_broker(url: str) -> RedisClusterBroker:
    """FastStream as a performance-minded user sets it up: no per-message log lines."""
    return RedisClusterBroker(url, logger=None)


async def concurrently(count: int, send: Any) -> float:
    """Messages per second of ``send(i)`` for i < count, from PUBLISHERS concurrent tasks."""

    async def worker(offset: int) -> None:
        for i in range(offset, count, PUBLISHERS):
            await send(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker(o) for o in range(PUBLISHERS)))
    return count / (time.perf_counter() - started)


async def until(check: Any, within: float = 300) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls what other tasks change
            await asyncio.sleep(0.005)


async def ours_consume(client: AnyRedis, spec: StreamSpec, n: int) -> float:
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
    await until(lambda: handled >= n)
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return n / elapsed


async def ceiling_consume(client: AnyRedis, spec: StreamSpec, n: int) -> float:
    """The plain loop: read a batch, decode it, run its handlers concurrently, ack it at once."""
    handled = 0

    async def handle(msg: Posted, env: Envelope) -> None:
        nonlocal handled
        handled += 1

    async def partition(key: str) -> None:
        while handled < n:
            reply = await client.xreadgroup("ceiling", "c1", {key: ">"}, count=BATCH, block=50)
            if not reply:
                continue
            entries = reply[0][1]
            decoded = [(decode_payload(Posted, f), decode_envelope(f)) for _, f in entries]
            await asyncio.gather(*(handle(m, e) for m, e in decoded))  # type: ignore[arg-type]
            await client.xack(key, "ceiling", *(entry_id for entry_id, _ in entries))

    keys = [spec.key(p) for p in range(spec.partitions)]
    for key in keys:
        await client.xgroup_create(key, "ceiling", "0", mkstream=True)
    started = time.perf_counter()
    await asyncio.gather(*(partition(key) for key in keys))
    return n / (time.perf_counter() - started)


async def faststream_consume(url: str, client: AnyRedis, spec: StreamSpec, n: int) -> float:
    """FastStream's batch subscriber, one per partition, logging off."""
    broker = fast_broker(url)
    handled = 0
    for key in [spec.key(p) for p in range(spec.partitions)]:
        await client.xgroup_create(key, "fs", "0", mkstream=True)
        sub = StreamSub(key, group="fs", consumer="c1", batch=True, max_records=BATCH)

        @broker.subscriber(stream=sub)
        async def handle(body: list[dict[str, Any]]) -> None:
            nonlocal handled
            handled += len(body)

    started = time.perf_counter()
    await broker.start()
    await until(lambda: handled >= n)
    elapsed = time.perf_counter() - started
    await broker.stop()
    return n / elapsed


async def latency(client: AnyRedis, rate: int, seconds: float = LATENCY_SECONDS) -> list[float]:
    spec = new_spec()
    samples: list[float] = []

    async def handle(msg: Posted, env: Envelope) -> None:
        samples.append((time.time_ns() - msg.sent_ns) / 1e6)

    settings = ConsumerSettings(block_ms=1000)
    publisher = Publisher(client, producer="bench", stream_of=lambda _: spec)
    total = int(rate * seconds)
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
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(publisher.publish(message(i, time.time_ns()))))
        await asyncio.gather(*tasks)
        await until(lambda: len(samples) >= total, within=60)
    return sorted(samples)


def percentile(samples: list[float], q: float) -> float:
    return round(samples[max(0, int(len(samples) * q) - 1)], 3)


async def throughput(url: str, client: AnyRedis, n: int) -> dict[str, float | int]:
    """Publish and consume ``n`` messages each way: ours, FastStream (fast mode), the ceiling."""
    ours, theirs = new_spec(), new_spec()
    publisher = Publisher(client, producer="bench", stream_of=lambda _: ours)
    publish_rate = await concurrently(n, lambda i: publisher.publish(message(i)))

    broker = fast_broker(url)
    await broker.connect()
    # Warm its pool up first: concurrent first calls race while connecting in redis-py 8.1.
    for i in range(PUBLISHERS):
        await broker.publish({"warmup": i}, stream=f"{theirs.owner}:warmup:{{{i}}}")
    fs_publish_rate = await concurrently(
        n,
        lambda i: broker.publish(
            msgspec.to_builtins(message(i)), stream=theirs.key_for(f"c{i % KEYS}")
        ),
    )
    await broker.stop()

    consume_rate = await ours_consume(client, ours, n)
    ceiling_rate = await ceiling_consume(client, ours, n)  # the same entries, another group
    fs_rate = await faststream_consume(url, client, theirs, n)
    return {
        "messages": n,
        "publish_per_s": round(publish_rate),
        "faststream_publish_per_s": round(fs_publish_rate),
        "publish_vs_faststream": round(publish_rate / fs_publish_rate, 2),
        "consume_per_s": round(consume_rate),
        "faststream_batch_consume_per_s": round(fs_rate),
        "ceiling_consume_per_s": round(ceiling_rate),
        "consume_vs_faststream_batch": round(consume_rate / fs_rate, 2),
        "consume_vs_ceiling": round(consume_rate / ceiling_rate, 2),
    }


async def run(url: str) -> dict[str, Any]:
    client = await create_client(RedisSettings(url=url, max_connections=512))
    # Latency first, while the process is fresh (no garbage from the throughput phases).
    await latency(client, 1000, 1)  # warm-up (a fresh cluster is still syncing replicas): discarded
    latencies = []
    for rate in RATES:
        samples = await latency(client, rate)
        latencies.append(
            {"rate": rate, "p50_ms": percentile(samples, 0.5), "p99_ms": percentile(samples, 0.99)}
        )
    sizes = [await throughput(url, client, n) for n in SIZES]
    await client.aclose()
    middle = sizes[len(sizes) // 2]
    at_1000 = next((row for row in latencies if row["rate"] == 1000), latencies[-1])
    return {
        **middle,
        "p50_ms": at_1000["p50_ms"],
        "p99_ms": at_1000["p99_ms"],
        "latency_rate": at_1000["rate"],
        "sizes": sizes,
        "latencies": latencies,
    }


def main() -> None:
    # A fresh, empty cluster: no AOF left to load from an earlier run.
    with bench_cluster(ROOT / ".parley", PORTS, fresh=True) as url:
        figures = asyncio.run(run(url))
    print(
        f"{'messages':>9}{'publish':>9}{'fs pub':>9}{'ratio':>7}"
        f"{'consume':>9}{'fs batch':>9}{'ceiling':>9}{'vs fs':>7}{'vs ceil':>8}"
    )
    for row in figures["sizes"]:
        print(
            f"{row['messages']:>9}{row['publish_per_s']:>9}{row['faststream_publish_per_s']:>9}"
            f"{row['publish_vs_faststream']:>7}{row['consume_per_s']:>9}"
            f"{row['faststream_batch_consume_per_s']:>9}{row['ceiling_consume_per_s']:>9}"
            f"{row['consume_vs_faststream_batch']:>7}{row['consume_vs_ceiling']:>8}"
        )
    for row in figures["latencies"]:
        print(f"latency @{row['rate']:>5}/s  p50 {row['p50_ms']:>7} ms  p99 {row['p99_ms']:>7} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
