"""A consumer instance in its own process, for tests that kill one (not a test module).

    python bus_worker.py <redis url> <stream owner> <partitions> <group>

It handles ``bustest.ping`` events by appending ``seq`` to a per-key list in Redis, guarded by a
per-message marker so a redelivered message leaves no second side effect, and counts deliveries.
It prints ``ready`` once it consumes and exits cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import ClassVar

from contracts.base import Envelope, Event
from contracts.topology import StreamSpec
from shared.bus import Consumer, ConsumerSettings
from shared.redis.client import RedisSettings, create_client

EFFECT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', 600) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], 600)
end
return redis.call('INCR', KEYS[3])
"""


class Ping(Event, frozen=True, kw_only=True):
    """The tests' event (same type name as theirs)."""

    TYPE: ClassVar[str] = "bustest.ping"
    STREAM: ClassVar[str] = "bustest.events"
    KEY: ClassVar[str | None] = "key"

    key: str
    seq: int
    poison: bool = False


def effect_keys(owner: str, key: str, message_id: str) -> list[str]:
    """Marker, per-key log and delivery counter of one message (one slot per key)."""
    return [
        f"{owner}:effect:{{{owner}.{key}}}:{message_id}",
        f"{owner}:log:{{{owner}.{key}}}",
        f"{owner}:deliveries:{{{owner}.{key}}}",
    ]


async def main(url: str, owner: str, partitions: int, group: str) -> None:
    logging.basicConfig(level=os.environ.get("BUS_WORKER_LOG", "WARNING"))
    client = await create_client(RedisSettings(url=url, max_connections=256))
    spec = StreamSpec(name=f"{owner}.events", owner=owner, partitions=partitions, max_len=10**6)
    effect = client.register_script(EFFECT)

    async def handle(msg: Ping, env: Envelope) -> None:
        await effect(keys=effect_keys(owner, msg.key, env.id), args=[msg.seq])
        await asyncio.sleep(0.001)

    settings = ConsumerSettings(batch=100, block_ms=200, lease_ttl=1.5, backoff_base=0.01)
    consumer = Consumer(
        client, group=group, handlers={Ping: handle}, settings=settings, stream_of=lambda _: spec
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await consumer.start()
    print("ready", flush=True)
    await stop.wait()
    await consumer.stop()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
