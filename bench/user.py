"""The user service: profile reads cached vs uncached, and presence heartbeats, in one run.

    uv run python bench/user.py             # starts its own cluster on ports 7621-7626
    PARLEY_BENCH_REDIS=redis://host:port uv run python bench/user.py

Figures (ratios travel between machines, absolute rates do not):
- ``db_reads_per_s``: ``GetProfile`` handled with the caches off (every read is a SQLite query);
- ``redis_reads_per_s``: the same with the Redis cache and no near-cache (one GET per read);
- ``near_reads_per_s``: the same with the in-process near-cache (hot profiles);
  ``redis_vs_db`` and ``near_vs_db`` are the ratios;
- ``heartbeats_per_s``: gateway heartbeats handled by one process (one script in the user's
  slot plus the due-set update each), 64 at a time over 1,000 users.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from contracts import auth as auth_contracts
from contracts import gateway as gw
from contracts import user as wire
from contracts.base import Envelope
from parley.cluster import LocalCluster, parse_ports
from shared.redis.client import RedisSettings, create_client
from shared.service.database import Database

# This file is named after the service, so its folder must not shadow the `user` package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from user.bootstrap import MIGRATIONS, UserService, assemble  # noqa: E402
from user.config import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7621-7626")
USERS = 1000
CONCURRENCY = 64
SECONDS = float(os.environ.get("PARLEY_BENCH_SECONDS", "3"))


async def rate(op: Callable[[int], Awaitable[Any]]) -> float:
    """Operations per second of ``op`` run by CONCURRENCY workers for SECONDS."""
    done = 0
    stop = time.perf_counter() + SECONDS

    async def worker(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.perf_counter() < stop:
            await op(rng.randrange(USERS))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    return done / (time.perf_counter() - started)


async def main() -> None:
    url = os.environ.get("PARLEY_BENCH_REDIS")
    cluster = None
    if url is None:
        cluster = LocalCluster(ROOT / ".parley", parse_ports(PORTS))
        cluster.up()
        url = cluster.url()
    client = await create_client(RedisSettings(url=url, max_connections=128))
    tmp = tempfile.mkdtemp(prefix="bench-user-")
    db = Database(f"sqlite+aiosqlite:///{tmp}/user.db")
    await db.migrate(MIGRATIONS)
    run = uuid.uuid4().hex[:6]
    ids = [f"b{run}-{i}" for i in range(USERS)]

    def service(**overrides: Any) -> UserService:
        settings = Settings(presence_offline_grace=5.0, **overrides)
        return assemble(client, db.engine, settings, instance_id=f"bench-{uuid.uuid4().hex[:6]}")

    uncached = service(cache_enabled=False)
    redis_only = service(profile_near_cache_size=0)
    near = service(profile_near_cache_size=USERS * 2)
    await near.invalidations.start()
    for uid in ids:
        msg = auth_contracts.AccountRegistered(user_id=uid, username=uid, display_name=uid)
        await uncached.profiles.account_registered(msg, Envelope.for_message(msg, producer="b"))
    asks = [wire.GetProfile(user_id=uid) for uid in ids]
    env = Envelope.for_message(asks[0], producer="bench")

    def reader(svc: UserService) -> Callable[[int], Awaitable[Any]]:
        return lambda i: svc.profiles.get_profile(asks[i], env)

    figures: dict[str, float] = {}
    figures["db_reads_per_s"] = await rate(reader(uncached))
    await rate(reader(redis_only))  # warm the Redis entries
    figures["redis_reads_per_s"] = await rate(reader(redis_only))
    await rate(reader(near))  # warm the near-cache
    figures["near_reads_per_s"] = await rate(reader(near))
    figures["redis_vs_db"] = figures["redis_reads_per_s"] / figures["db_reads_per_s"]
    figures["near_vs_db"] = figures["near_reads_per_s"] / figures["db_reads_per_s"]

    beats = [
        gw.ConnectionHeartbeat(user_id=uid, device_id="d1", connection_id="c", gateway_id="g")
        for uid in ids
    ]
    for beat in beats:  # the first report of each user is a transition; measure steady state
        await near.presence.device_seen(beat)
    figures["heartbeats_per_s"] = await rate(lambda i: near.presence.device_seen(beats[i]))

    for svc in (uncached, redis_only, near):
        await svc.publisher.aclose()
    await near.invalidations.aclose()
    await client.aclose()
    await db.close()
    if cluster is not None and not os.environ.get("PARLEY_BENCH_KEEP"):
        cluster.down()

    print(f"{'figure':<22}{'value':>14}")
    for name, value in figures.items():
        print(f"{name:<22}{value:>14,.1f}")
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))


if __name__ == "__main__":
    asyncio.run(main())
