"""Subscribing N sharded channels: ours (multiplexed) vs one connection per channel vs redis-py's.

    uv run python bench/pubsub.py             # starts its own cluster on ports 7431-7436
    PARLEY_BENCH_REDIS=redis://host:port uv run python bench/pubsub.py

For N = 100, 1000, 5000 random channels (spread over every slot), the time until all are
subscribed (every confirmation received) and the subscriber connections used, by:
- ``ours``: :meth:`shared.pubsub.PubSub.listen`, one connection per primary, one batched write;
- ``per_channel``: the previous design, a dedicated connection per channel (connect, SSUBSCRIBE,
  wait for the confirmation), all channels at once; skipped above ``PARLEY_BENCH_BASELINE_MAX``
  channels (default 1000: each is a socket of the bench and a client of the cluster);
- ``redis_py``: redis-py's asyncio ``RedisCluster.pubsub()`` (``ClusterPubSub.ssubscribe``),
  then reading confirmations until all arrived.
Figures: seconds per method and N, ``<method>_connections``, and ``speedup_over_per_channel`` /
``speedup_over_redis_py`` (ratios travel between machines). Medians of ROUNDS rounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from redis.asyncio import RedisCluster

from parley.cluster import bench_cluster
from shared.pubsub import PubSub
from shared.redis.client import RedisSettings, create_client

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7431-7436")
SIZES = (100, 1000, 5000)
BASELINE_MAX = int(os.environ.get("PARLEY_BENCH_BASELINE_MAX", "1000"))
ROUNDS = int(os.environ.get("PARLEY_BENCH_ROUNDS", "3"))


class Frame(msgspec.Struct, frozen=True):
    n: int


class Ignore:
    def on_message(self, channel: str, message: Frame) -> None:
        pass

    def on_gap(self, channel: str) -> None:
        pass

    def on_failure(self, channel: str, error: Exception) -> None:
        pass


def channels(n: int) -> list[str]:
    return [f"bench:rt:{{conv:{uuid.uuid4().hex}}}" for _ in range(n)]


async def ours(client: RedisCluster, names: list[str]) -> tuple[float, int]:
    pubsub, listener = PubSub(client, name=f"bench-{uuid.uuid4().hex[:8]}"), Ignore()
    started = time.perf_counter()
    await pubsub.listen(names, Frame, listener)
    elapsed = time.perf_counter() - started
    connections = pubsub.connections
    pubsub.unlisten(names, listener)
    return elapsed, connections


async def per_channel(client: RedisCluster, names: list[str]) -> tuple[float, int]:
    async def one(name: str) -> Any:
        node = client.get_node_from_key(name)
        assert node is not None
        conn = node.connection_class(**node.connection_kwargs)
        await conn.connect()
        await conn.send_command("SSUBSCRIBE", name, check_health=False)
        await conn.read_response(push_request=True, disable_decoding=True)
        return conn

    started = time.perf_counter()
    conns = await asyncio.gather(*(one(name) for name in names))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(conn.disconnect() for conn in conns))
    return elapsed, len(conns)


async def redis_py(client: RedisCluster, names: list[str]) -> tuple[float, int]:
    pubsub = client.pubsub()
    started = time.perf_counter()
    await pubsub.ssubscribe(*names)
    confirmed = 0
    while confirmed < len(names):
        # No timeout: a poll with one would wait on each node's connection in turn.
        message = await pubsub.get_sharded_message(timeout=0.0)
        if message is None:
            await asyncio.sleep(0)
        elif message["type"] in ("ssubscribe", b"ssubscribe"):
            confirmed += 1
    elapsed = time.perf_counter() - started
    connections = len(pubsub.node_pubsub_mapping)
    await pubsub.sunsubscribe()
    await pubsub.aclose()
    return elapsed, connections


METHODS: dict[str, Callable[[RedisCluster, list[str]], Awaitable[tuple[float, int]]]] = {
    "ours": ours,
    "per_channel": per_channel,
    "redis_py": redis_py,
}


async def measure(url: str) -> dict[str, float | int]:
    client = await create_client(RedisSettings(url=url, max_connections=64))
    assert isinstance(client, RedisCluster), "the benchmark needs a cluster"
    figures: dict[str, float | int] = {}
    try:
        for n in SIZES:
            times: dict[str, list[float]] = {}
            for _ in range(ROUNDS):  # rounds alternate the methods: drift hurts all alike
                for method, run in METHODS.items():
                    if method == "per_channel" and n > BASELINE_MAX:
                        continue
                    elapsed, connections = await run(client, channels(n))
                    times.setdefault(method, []).append(elapsed)
                    figures[f"{method}_connections_{n}"] = connections
                    await asyncio.sleep(0.2)  # let the unsubscribes and closes settle
            for method, values in times.items():
                figures[f"{method}_s_{n}"] = round(statistics.median(values), 4)
            ours_s = figures[f"ours_s_{n}"]
            for other in ("per_channel", "redis_py"):
                if f"{other}_s_{n}" in figures:
                    ratio = float(figures[f"{other}_s_{n}"]) / float(ours_s)
                    figures[f"speedup_over_{other}_{n}"] = round(ratio, 1)
    finally:
        await client.aclose()
    return figures


def table(figures: dict[str, float | int]) -> None:
    print(f"{'N':>6} {'method':<12} {'seconds':>9} {'connections':>12}")
    for n in SIZES:
        for method in METHODS:
            if f"{method}_s_{n}" in figures:
                seconds, conns = figures[f"{method}_s_{n}"], figures[f"{method}_connections_{n}"]
                print(f"{n:>6} {method:<12} {seconds:>9.4f} {conns:>12}")


def main() -> None:
    with bench_cluster(ROOT / ".parley", PORTS) as url:
        figures = asyncio.run(measure(url))
    table(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
