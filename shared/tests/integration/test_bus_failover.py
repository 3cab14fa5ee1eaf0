"""Two consumer processes, one SIGKILLed midway: nothing lost, order kept, no double effect."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import pytest

from contracts.base import Event
from contracts.topology import StreamSpec
from shared.bus import Publisher, naming
from shared.redis.client import AnyRedis, RedisSettings, create_client

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKER = Path(__file__).with_name("bus_worker.py")
KEYS, PER_KEY, PARTITIONS = 100, 100, 8


class Ping(Event, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "bustest.ping"
    STREAM: ClassVar[str] = "bustest.events"
    KEY: ClassVar[str | None] = "key"

    key: str
    seq: int
    poison: bool = False


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AnyRedis]:
    c = await create_client(RedisSettings(url=redis_url))
    yield c
    await c.aclose()


def start_worker(redis_url: str, owner: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), redis_url, owner, str(PARTITIONS), "workers"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


async def count_effects(client: AnyRedis, owner: str) -> int:
    lengths = await asyncio.gather(
        *(client.llen(f"{owner}:log:{{{owner}.k{k}}}") for k in range(KEYS))
    )
    return sum(lengths)


async def lease_owners(client: AnyRedis, spec: StreamSpec) -> set[bytes | str]:
    owners = await asyncio.gather(
        *(client.get(naming.lease_key(spec, "workers", p)) for p in range(PARTITIONS))
    )
    return {o for o in owners if o is not None}


async def test_a_killed_instance_loses_nothing_and_breaks_no_order(
    client: AnyRedis, redis_url: str
) -> None:
    owner = f"t{uuid.uuid4().hex[:10]}"
    spec = StreamSpec(name=f"{owner}.events", owner=owner, partitions=PARTITIONS, max_len=10**6)
    survivor = start_worker(redis_url, owner)
    victim = start_worker(redis_url, owner)
    try:
        async with asyncio.timeout(10):  # both instances own partitions before the load starts
            while len(await lease_owners(client, spec)) < 2:  # noqa: ASYNC110 - polls what other tasks change
                await asyncio.sleep(0.05)
        pub = Publisher(client, producer="bustest", stream_of=lambda _: spec)
        for seq in range(PER_KEY):
            await asyncio.gather(*(pub.publish(Ping(key=f"k{k}", seq=seq)) for k in range(KEYS)))
        async with asyncio.timeout(60):
            while await count_effects(client, owner) < KEYS * PER_KEY // 4:  # noqa: ASYNC110 - polls what other tasks change
                await asyncio.sleep(0.01)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            while await count_effects(client, owner) < KEYS * PER_KEY:  # noqa: ASYNC110 - polls what other tasks change
                await asyncio.sleep(0.1)
        for k in range(KEYS):
            log = await client.lrange(f"{owner}:log:{{{owner}.k{k}}}", 0, -1)
            assert [int(x) for x in log] == list(range(PER_KEY)), f"key k{k} out of order"
        # Acknowledgements without marks (the duplicates of the victim's work) wait for the
        # partition's ack linger: nothing may stay pending once it has passed.
        async with asyncio.timeout(5):
            for p in range(PARTITIONS):
                while (await client.xpending(spec.key(p), "workers"))["pending"]:  # noqa: ASYNC110 - polls what other tasks change
                    await asyncio.sleep(0.05)
    finally:
        for proc in (survivor, victim):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
