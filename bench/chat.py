"""Chat service: messages posted per second through the bus, and history reads cached vs database.

    uv run python bench/chat.py           # starts its own cluster on ports 7521-7526, SQLite
    PARLEY_BENCH_REDIS=redis://host:port PARLEY_BENCH_DATABASE_URL=postgresql+asyncpg://...

Figures (ratios travel between machines, absolute rates do not):
- ``bus_posts_per_s``: PostMessage commands answered per second when a caller (Requester) and a
  chat consumer share one process and ``CONCURRENCY`` posts are in flight over ``CONVERSATIONS``
  conversations; ``direct_posts_per_s``: the same posts calling the handler in-process (the
  baseline); ``bus_over_direct``: their ratio (the cost of the bus round trip);
- ``history_db_us`` / ``history_cached_us``: one read of the latest 50 messages from the database
  vs from the recent-message cache (median over alternating rounds); ``history_speedup``: db /
  cached.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from contracts import chat as chat_wire
from contracts.base import Message
from contracts.topology import StreamSpec
from parley.cluster import LocalCluster, parse_ports
from shared.bus import ConsumerSettings, Publisher, Requester
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.service.database import Database

# This file is bench/chat.py: with its folder first on sys.path, ``import chat`` would import this
# file instead of the chat service, so the folder is dropped before importing the service.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from chat.bootstrap import MIGRATIONS, Chat, consumer, wire  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7521-7526")
POSTS = int(os.environ.get("PARLEY_BENCH_POSTS", "1000"))
CONCURRENCY = 32
CONVERSATIONS = 16
READS, ROUNDS = 200, 10


def uid() -> str:
    return uuid.uuid4().hex[:12]


async def conversations(chat: Chat, people: list[str]) -> list[str]:
    out = []
    for _ in range(CONVERSATIONS):
        conv = await chat.conversations.create(
            chat_wire.CreateConversation(
                creator_id=people[0], kind="group", member_ids=people[1:], title="bench"
            )
        )
        out.append(conv.id)
    return out


def commands(convs: list[str], people: list[str]) -> list[chat_wire.PostMessage]:
    return [
        chat_wire.PostMessage(
            sender_id=people[i % len(people)],
            conversation_id=convs[i % len(convs)],
            client_msg_id=uid(),
            body=f"message {i} " + "x" * 80,
        )
        for i in range(POSTS)
    ]


async def rate(
    jobs: list[chat_wire.PostMessage], send: Callable[[object], Awaitable[bool]]
) -> float:
    """Posts per second with CONCURRENCY in flight; every post must succeed."""
    queue = list(reversed(jobs))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while queue:
            if not await send(queue.pop()):
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} posts failed")
    return len(jobs) / elapsed


async def posting(chat: Chat, redis: AnyRedis) -> dict[str, float]:
    owner = f"bench{uid()[:8]}"
    spec = StreamSpec(name=f"{owner}.commands", owner=owner, partitions=16, max_len=100_000)

    def stream_of(_: type[Message]) -> StreamSpec:
        return spec

    people = [f"p{uid()}" for _ in range(4)]
    convs = await conversations(chat, people)

    async def direct(cmd: object) -> bool:
        assert isinstance(cmd, chat_wire.PostMessage)
        await chat.messages.post(cmd)
        return True

    bus = consumer(chat, redis, settings=ConsumerSettings(block_ms=50), stream_of=stream_of)
    publisher = Publisher(redis, producer="bench", stream_of=stream_of)
    await bus.start()
    try:
        async with Requester(redis, publisher, instance_id=f"bench-{uid()}") as caller:

            async def through_bus(cmd: object) -> bool:
                assert isinstance(cmd, chat_wire.PostMessage)
                reply = await caller.request(cmd, timeout=10)
                return reply.ok

            await rate(commands(convs, people)[: POSTS // 10], through_bus)  # warm-up
            bus_rate = await rate(commands(convs, people), through_bus)
            direct_rate = await rate(commands(convs, people), direct)
    finally:
        await bus.stop()
        await publisher.aclose()
        for p in range(spec.partitions):
            await redis.delete(spec.key(p))
    return {
        "bus_posts_per_s": round(bus_rate, 1),
        "direct_posts_per_s": round(direct_rate, 1),
        "bus_over_direct": round(bus_rate / direct_rate, 3),
    }


async def history(chat: Chat) -> dict[str, float]:
    people = [f"p{uid()}" for _ in range(2)]
    conv = (await conversations(chat, people))[0]
    for i in range(100):
        await chat.messages.post(
            chat_wire.PostMessage(
                sender_id=people[i % 2], conversation_id=conv, client_msg_id=uid(), body=f"m{i}"
            )
        )
    store = chat.sql_messages
    cached_store = chat.messages._messages  # the cache-aside store the handler uses

    async def from_db() -> object:
        return await store.history(conv, before=None, after=None, limit=50)

    async def from_cache() -> object:
        return await cached_store.history(conv, before=None, after=None, limit=50)

    assert await from_db() == await from_cache()
    assert await chat.recent.read(conv, before=None, after=None, limit=50) is not None
    times: dict[str, list[float]] = {"db": [], "cached": []}
    for _ in range(ROUNDS):
        for name, op in (("db", from_db), ("cached", from_cache)):
            started = time.perf_counter()
            for _ in range(READS):
                await op()
            times[name].append((time.perf_counter() - started) / READS)
    db, cached = statistics.median(times["db"]), statistics.median(times["cached"])
    return {
        "history_db_us": round(db * 1e6, 1),
        "history_cached_us": round(cached * 1e6, 1),
        "history_speedup": round(db / cached, 2),
    }


async def run(url: str, database_url: str) -> dict[str, float | int | str]:
    redis = await create_client(RedisSettings(url=url))
    database = Database(database_url)
    await database.migrate(MIGRATIONS)
    chat = wire(redis, database.engine)
    try:
        figures: dict[str, float | int | str] = {}
        figures.update(await history(chat))
        figures.update(await posting(chat, redis))
    finally:
        await chat.aclose()
        await database.close()
        await redis.aclose()
    figures.update(
        posts=POSTS,
        concurrency=CONCURRENCY,
        conversations=CONVERSATIONS,
        database=database_url.split(":", 1)[0],
    )
    return figures


def main() -> None:
    url = os.environ.get("PARLEY_BENCH_REDIS")
    cluster, reused = None, True
    if url is None:
        cluster = LocalCluster(ROOT / ".parley", parse_ports(PORTS))
        reused = cluster.status().ok
        cluster.up()
        url = cluster.url()
    with tempfile.TemporaryDirectory() as tmp:
        database_url = os.environ.get(
            "PARLEY_BENCH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp}/chat.db"
        )
        try:
            figures = asyncio.run(run(url, database_url))
        finally:
            if cluster is not None and not reused:
                cluster.down()
    print(f"{'figure':<22} {'value':>14}")
    for name, value in figures.items():
        print(f"{name:<22} {value!s:>14}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
