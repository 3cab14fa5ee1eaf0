"""Pool efficiency: connections per node and the wait for one, against throughput and latency
under contention, for Parley's cluster client and for redis-py configured for speed.

    uv run python bench/pool.py             # starts its own cluster on ports 7441-7446
    PARLEY_BENCH_PORTS=9461-9466 uv run python bench/pool.py
    PARLEY_BENCH_REDIS=redis://host:port uv run python bench/pool.py

``C`` tasks share one client and run GET (9 in 10) and SET (1 in 10) on keys spread over every
slot, as fast as they can, ``PARLEY_BENCH_OPS`` commands in all per cell. Each cell is one
concurrency level and one client:
- ``redis-py``: the baseline, ``redis.asyncio.RedisCluster`` as a user after speed builds it
  (hiredis parser, a pool bounded far above the concurrency: a connection per concurrent command,
  never a wait, never a refusal);
- ``redis-py/P``: the same with ``max_connections=P`` per node: what bounding its pool costs
  (redis-py fails a command at once with ``MaxConnectionsError`` when the node's pool is full);
- ``parley/P``: :func:`shared.redis.create_client` with ``max_connections=P`` per node and the
  default ``pool_timeout`` (1 s): a command waits for a free connection instead.

Figures per cell: throughput (commands/s), p50 and p99 latency (ms), failed commands, connections
opened, and ``vs_base``: the cell's throughput over the baseline's at the same concurrency (the
figure that travels between machines). Rounds alternate the cells so a drifting machine hurts all
alike; the median round is reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import RedisCluster

from parley.cluster import bench_cluster
from shared.redis.client import RedisSettings, create_client

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7441-7446")
OPS = int(os.environ.get("PARLEY_BENCH_OPS", "6000"))
ROUNDS = int(os.environ.get("PARLEY_BENCH_ROUNDS", "3"))
CONCURRENCY = (16, 64, 256, 1024)
POOL_SIZES = (4, 16, 64, 256)
BOUNDED_BASELINE = 16
UNBOUNDED = 100_000  # redis-py's default is 100 per node, which 1024 tasks overflow
KEYS = 1024

Client = RedisCluster


@dataclass
class Cell:
    """One measured run: a client at one concurrency level."""

    throughput: float
    p50_ms: float
    p99_ms: float
    failed: int
    connections: int


def _connections(client: RedisCluster) -> int:
    nodes = client.nodes_manager.nodes_cache.values()
    return sum(1 for node in nodes for c in node._connections if c.is_connected)


async def _drive(client: RedisCluster, keys: list[str], concurrency: int, ops: int) -> Cell:
    latencies: list[float] = []
    failed = 0
    per_task = max(1, ops // concurrency)

    async def worker(seed: int) -> None:
        nonlocal failed
        rng = random.Random(seed)
        for _ in range(per_task):
            key = keys[rng.randrange(KEYS)]
            started = time.perf_counter()
            try:
                if rng.random() < 0.1:
                    await client.set(key, "v" * 64)
                else:
                    await client.get(key)
            except Exception:
                failed += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    done = len(latencies)

    def at(q: float) -> float:
        return latencies[min(done - 1, int(q * done))] * 1000 if done else float("nan")

    return Cell(done / elapsed, at(0.50), at(0.99), failed, _connections(client))


def _clients(url: str) -> dict[str, Callable[[], Awaitable[RedisCluster]]]:
    async def baseline() -> RedisCluster:
        client = RedisCluster.from_url(url, max_connections=UNBOUNDED)
        await client.initialize()
        return client

    async def bounded() -> RedisCluster:
        client = RedisCluster.from_url(url, max_connections=BOUNDED_BASELINE)
        await client.initialize()
        return client

    def parley(size: int) -> Callable[[], Awaitable[RedisCluster]]:
        async def make() -> RedisCluster:
            client = await create_client(RedisSettings(url=url, max_connections=size))
            assert isinstance(client, RedisCluster)
            return client

        return make

    clients = {"redis-py": baseline, f"redis-py/{BOUNDED_BASELINE}": bounded}
    clients.update({f"parley/{size}": parley(size) for size in POOL_SIZES})
    return clients


async def run(url: str) -> dict[str, dict[str, dict[str, float]]]:
    tag = uuid.uuid4().hex[:6]
    keys = [f"bench:pool:{{{tag}{n}}}" for n in range(KEYS)]
    makers = _clients(url)
    seed = await makers["redis-py"]()
    await asyncio.gather(*(seed.set(k, "v" * 64, ex=600) for k in keys))
    await seed.aclose()
    cells: dict[tuple[str, int], list[Cell]] = {}
    for _ in range(ROUNDS):
        for concurrency in CONCURRENCY:
            for name, make in makers.items():
                client = await make()  # fresh pools: each cell opens its own connections
                try:
                    # Warm-up at the same concurrency: the connections are opened before timing.
                    await _drive(client, keys, concurrency, 2 * concurrency)
                    cell = await _drive(client, keys, concurrency, OPS)
                finally:
                    await client.aclose()
                cells.setdefault((name, concurrency), []).append(cell)
    return _report(cells)


def _median(cells: list[Cell]) -> Cell:
    return sorted(cells, key=lambda c: c.throughput)[len(cells) // 2]


def _report(cells: dict[tuple[str, int], list[Cell]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (name, concurrency), runs in cells.items():
        cell = _median(runs)
        base = _median(cells[("redis-py", concurrency)])
        out.setdefault(str(concurrency), {})[name] = {
            "ops_s": round(cell.throughput),
            "p50_ms": round(cell.p50_ms, 2),
            "p99_ms": round(cell.p99_ms, 2),
            "failed": statistics.median(c.failed for c in runs),
            "conns": cell.connections,
            "vs_base": round(cell.throughput / base.throughput, 3),
        }
    return out


def main() -> None:
    with bench_cluster(ROOT / ".parley", PORTS) as url:
        figures = asyncio.run(run(url))
    print(f"{'C':>5} {'client':<14} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} "
          f"{'conns':>6} {'vs_base':>8}")  # fmt: skip
    for concurrency, row in figures.items():
        for name, f in row.items():
            print(
                f"{concurrency:>5} {name:<14} {f['ops_s']:>8} {f['p50_ms']:>8} {f['p99_ms']:>8} "
                f"{f['failed']:>7} {f['conns']:>6} {f['vs_base']:>8}"
            )
    print(json.dumps({"ops_per_cell": OPS, "rounds": ROUNDS, "cells": figures}))


if __name__ == "__main__":
    main()
