"""Rate-limit checks per second vs raw INCR on the same cluster, same concurrency.

    uv run python bench/ratelimit.py            # starts its own cluster on ports 7521-7526
    PARLEY_BENCH_REDIS=redis://host:port uv run python bench/ratelimit.py

Both workloads run the same number of concurrent tasks over the same spread of subjects (so the
keys cover every master); the rounds alternate so a drifting machine hurts both alike. The figure
that travels between machines is ``ratelimit_over_incr``: checks/s divided by INCRs/s.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from parley.cluster import bench_cluster
from shared.keys import KeySpace
from shared.ratelimit import RateLimiter, RateLimitPolicy
from shared.redis.client import AnyRedis, RedisSettings, create_client

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7521-7526")
CONCURRENCY = int(os.environ.get("PARLEY_BENCH_CONCURRENCY", "32"))
SUBJECTS = 256
ROUND_SECONDS = float(os.environ.get("PARLEY_BENCH_ROUND_SECONDS", "3"))
ROUNDS = 3


async def throughput(op: Callable[[int], Awaitable[object]]) -> float:
    """Operations per second of ``op`` run by CONCURRENCY tasks for ROUND_SECONDS."""
    done = 0
    stop_at = time.perf_counter() + ROUND_SECONDS

    async def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < stop_at:
            await op(i % SUBJECTS)
            done += 1
            i += CONCURRENCY

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(CONCURRENCY)))
    return done / (time.perf_counter() - started)


async def run(url: str) -> dict[str, float | int]:
    client: AnyRedis = await create_client(RedisSettings(url=url, max_connections=CONCURRENCY * 2))
    ks = KeySpace("bench")
    # A generous policy so most checks are admitted (the write path, the costlier one).
    limiter = RateLimiter(client, ks, "bench", RateLimitPolicy(rate=1_000_000, period=1.0))
    incr_keys = [ks.key("counter", tag=f"bench:{n}") for n in range(SUBJECTS)]
    subjects = [f"s{n}" for n in range(SUBJECTS)]

    async def incr(n: int) -> object:
        return await client.incr(incr_keys[n])

    async def check(n: int) -> object:
        return await limiter.check(subjects[n])

    try:
        await throughput(incr)  # warm-up: connections, script cache
        await throughput(check)
        incr_rates, check_rates = [], []
        for _ in range(ROUNDS):
            incr_rates.append(await throughput(incr))
            check_rates.append(await throughput(check))
        # Leave nothing behind on a shared server.
        for key, who in zip(incr_keys, subjects, strict=True):
            await client.delete(key)
            await limiter.reset(who)
    finally:
        await client.aclose()
    incr_ops, check_ops = statistics.median(incr_rates), statistics.median(check_rates)
    return {
        "incr_ops_per_s": round(incr_ops),
        "ratelimit_checks_per_s": round(check_ops),
        "ratelimit_over_incr": round(check_ops / incr_ops, 3),
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "round_seconds": ROUND_SECONDS,
    }


def main() -> None:
    with bench_cluster(ROOT / ".parley", PORTS) as url:
        figures = asyncio.run(run(url))
    print(f"{'workload':<28}{'ops/s':>12}")
    print(f"{'raw INCR':<28}{figures['incr_ops_per_s']:>12,}")
    print(f"{'GCRA check (EVALSHA)':<28}{figures['ratelimit_checks_per_s']:>12,}")
    print(f"{'ratio check / INCR':<28}{figures['ratelimit_over_incr']:>12}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
