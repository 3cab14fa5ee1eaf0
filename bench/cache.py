"""Cached reads through the decorator and the near-cache vs a raw redis-py GET of the same key.

    uv run python bench/cache.py             # starts its own cluster on ports 7421-7426
    PARLEY_BENCH_REDIS=redis://host:port uv run python bench/cache.py

Figures (ratios travel between machines, absolute times do not):
- ``cached_over_raw``: time of a decorator hit / time of a raw ``GET`` of the same Redis key
  (target <= 1.3);
- ``near_cache_speedup``: raw ``GET`` time / near-cache hit time through the decorator (>= 20);
- ``zipf_hit_ratio`` / ``zipf_near_hit_ratio``: reads not sent to the loader over all reads of a
  Zipf-like workload (a cold start included), without and with a near-cache smaller than the key
  space; ``zipf_near_share``: the share of reads the near-cache answered.
Rounds alternate the workloads so a drifting machine hurts all alike; medians are reported.
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
from pathlib import Path

import msgspec
from prometheus_client import REGISTRY

from parley.cluster import bench_cluster
from shared.cache import Cache, InvalidationBus, cached
from shared.keys import KeySpace
from shared.pubsub import PubSub
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.ttl import TtlRule

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7421-7426")
OPS = int(os.environ.get("PARLEY_BENCH_OPS", "500"))
ROUNDS = 24
ZIPF_KEYS, ZIPF_READS, ZIPF_S = 2000, 20_000, 1.1
RULE = TtlRule(ttl=600, jitter=0.1)


class Profile(msgspec.Struct, frozen=True):
    user_id: str
    display_name: str
    bio: str
    avatar_url: str
    languages: list[str]


def profile(user_id: str) -> Profile:
    return Profile(user_id, "Ada Lovelace", "Analyst " * 10, f"https://cdn/{user_id}.png", ["en"])


async def per_op(op: Callable[[], Awaitable[object]]) -> float:
    """Mean seconds per call of ``op``, called OPS times in a row."""
    started = time.perf_counter()
    for _ in range(OPS):
        await op()
    return (time.perf_counter() - started) / OPS


async def zipf_ratio(cache: Cache[Profile], keys: list[str], weights: list[float]) -> float:
    loads = 0

    @cached(cache, key=lambda user_id: user_id)
    async def load(user_id: str) -> Profile | None:
        nonlocal loads
        loads += 1
        return profile(user_id)

    for user_id in random.choices(keys, weights, k=ZIPF_READS):
        await load(user_id)
    return 1 - loads / ZIPF_READS


async def run(url: str) -> dict[str, float | int]:
    client: AnyRedis = await create_client(RedisSettings(url=url))
    keyspace = KeySpace(f"bench{uuid.uuid4().hex[:6]}")
    bus = InvalidationBus(PubSub(client), keyspace)
    await bus.start()
    plain = Cache(client, keyspace, "profile", Profile, rule=RULE)
    near = Cache(client, keyspace, "near", Profile, rule=RULE, bus=bus, near_size=1000)

    @cached(plain, key=lambda user_id: user_id)
    async def plain_load(user_id: str) -> Profile | None:
        return profile(user_id)

    @cached(near, key=lambda user_id: user_id)
    async def near_load(user_id: str) -> Profile | None:
        return profile(user_id)

    await plain_load("u1")
    await near_load("u1")
    raw_key = plain.key("u1", 0)
    times: dict[str, list[float]] = {"raw": [], "cached": [], "near": []}
    ops: dict[str, Callable[[], Awaitable[object]]] = {
        "raw": lambda: client.get(raw_key),
        "cached": lambda: plain_load("u1"),
        "near": lambda: near_load("u1"),
    }
    for op in ops.values():  # warm-up
        await per_op(op)
    for _ in range(ROUNDS):
        for name, op in ops.items():
            times[name].append(await per_op(op))
    raw, hit, near_hit = (statistics.median(times[n]) for n in ("raw", "cached", "near"))

    keys = [f"z{n}" for n in range(ZIPF_KEYS)]
    weights = [1 / (rank + 1) ** ZIPF_S for rank in range(ZIPF_KEYS)]
    zipf_plain = Cache(client, keyspace, "zipf", Profile, rule=RULE)
    zipf_near = Cache(client, keyspace, "zipfnear", Profile, rule=RULE, bus=bus, near_size=200)
    hit_ratio = await zipf_ratio(zipf_plain, keys, weights)
    near_ratio = await zipf_ratio(zipf_near, keys, weights)
    near_hits = REGISTRY.get_sample_value(
        "parley_cache_near_hits_total", {"prefix": keyspace.prefix, "namespace": "zipfnear"}
    )
    await bus.aclose()
    await client.aclose()
    return {
        "raw_get_us": round(raw * 1e6, 1),
        "cached_hit_us": round(hit * 1e6, 1),
        "near_hit_us": round(near_hit * 1e6, 2),
        "cached_over_raw": round(hit / raw, 3),
        "near_cache_speedup": round(raw / near_hit, 1),
        "zipf_keys": ZIPF_KEYS,
        "zipf_reads": ZIPF_READS,
        "zipf_hit_ratio": round(hit_ratio, 4),
        "zipf_near_hit_ratio": round(near_ratio, 4),
        "zipf_near_share": round((near_hits or 0) / ZIPF_READS, 4),
        "ops_per_round": OPS,
        "rounds": ROUNDS,
    }


def main() -> None:
    with bench_cluster(ROOT / ".parley", PORTS) as url:
        figures = asyncio.run(run(url))
    print(f"{'figure':<24} {'value':>12}")
    for name, value in figures.items():
        print(f"{name:<24} {value:>12}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
