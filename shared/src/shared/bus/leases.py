"""Partition ownership within a consumer group: leases with heartbeats, balanced over instances.

Every instance of a group heartbeats into a members set (sorted by expiry) and holds a lease key
per partition it owns (``SET NX PX``, renewed by the owner only). Each tick an instance renews its
leases, counts the live members ``n`` and aims at ``ceil(P / n)`` partitions: it gives back extras
(after its worker drained them, so two instances never handle one key at once) and takes free ones.
When an instance dies its leases expire, so its partitions move within one TTL plus one tick.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable

from contracts.topology import StreamSpec
from shared.bus import naming, scripts
from shared.bus.streak import FailureStreak
from shared.redis.client import AnyRedis

log = logging.getLogger(__name__)

PartitionHook = Callable[[int], Awaitable[None]]


class PartitionLeases:
    """The leases one instance holds on one stream within one group.

    ``on_acquire(p)`` starts work on a partition; ``on_drain(p)`` must return once no message of
    ``p`` is in flight (the lease is released after it); ``on_lost(p)`` stops work at once when a
    renewal failed (another instance may own it now).
    """

    def __init__(
        self,
        client: AnyRedis,
        spec: StreamSpec,
        group: str,
        instance_id: str,
        *,
        ttl: float,
        on_acquire: PartitionHook,
        on_drain: PartitionHook,
        on_lost: PartitionHook,
    ) -> None:
        self._client = client
        self.spec = spec
        self.group = group
        self.instance_id = instance_id
        self.ttl = ttl
        self._on_acquire = on_acquire
        self._on_drain = on_drain
        self._on_lost = on_lost
        self.owned: set[int] = set()
        self._releasing: dict[int, asyncio.Task[None]] = {}
        self._acquire = client.register_script(scripts.LEASE_ACQUIRE)
        self._release = client.register_script(scripts.LEASE_RELEASE)
        self._members = naming.members_key(spec, group)

    @property
    def interval(self) -> float:
        """Seconds between heartbeats: a third of the TTL, so one lost beat keeps the lease."""
        return self.ttl / 3

    async def run(self) -> None:
        """Heartbeat and rebalance until cancelled; Redis errors are logged and retried."""
        renewed = time.monotonic()
        failing = FailureStreak(f"lease heartbeats on {self.spec.name}/{self.group}", log)
        while True:
            try:
                await self.tick()
                renewed = time.monotonic()
                failing.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                failing.failed(e)  # logged once, then every 30 s; the heartbeat keeps its cadence
                if time.monotonic() - renewed > self.ttl * 0.9:
                    # Our leases have (nearly) expired in Redis: another instance may own these
                    # partitions now, so stop work on them rather than risk handling a key twice.
                    await self._lose_all()
            await asyncio.sleep(self.interval)

    async def _lose_all(self) -> None:
        for p in sorted(self.owned):
            log.warning(
                "giving up %s[%d] in group %s: leases unrenewed", self.spec.name, p, self.group
            )
            self.owned.discard(p)
            task = self._releasing.pop(p, None)
            if task is not None:
                task.cancel()
            await self._on_lost(p)

    async def tick(self) -> None:
        """One heartbeat: announce this instance, renew, then give back or take partitions."""
        live = await self._heartbeat()
        await self._renew()
        target = math.ceil(self.spec.partitions / max(1, len(live)))
        keep = {p for p in self.owned if p not in self._releasing}
        for p in sorted(keep, key=self._preference, reverse=True)[: max(0, len(keep) - target)]:
            self._releasing[p] = asyncio.create_task(self._give_back(p))
        if len(keep) < target:
            await self._take(target - len(keep))

    async def _heartbeat(self) -> list[str]:
        now = int(time.time() * 1000)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(self._members, {self.instance_id: now + int(self.ttl * 1000)})
            pipe.zremrangebyscore(self._members, "-inf", now)
            pipe.zrange(self._members, 0, -1)
            pipe.pexpire(self._members, int(self.ttl * 10_000))
            result = await pipe.execute()
        return [m.decode() if isinstance(m, bytes) else m for m in result[2]]

    def _lease(self, p: int) -> str:
        return naming.lease_key(self.spec, self.group, p)

    def _preference(self, p: int) -> int:
        # A stable per-instance order spreads first choices, so instances rarely race for one lease.
        return zlib.crc32(f"{self.instance_id}:{p}".encode())

    async def _renew(self) -> None:
        owned = sorted(self.owned)
        ttl_ms = int(self.ttl * 1000)
        results = await asyncio.gather(
            *(self._acquire(keys=[self._lease(p)], args=[self.instance_id, ttl_ms]) for p in owned)
        )
        for p, ok in zip(owned, results, strict=True):
            if not ok:
                log.warning("lost lease on %s[%d] in group %s", self.spec.name, p, self.group)
                self.owned.discard(p)
                task = self._releasing.pop(p, None)
                if task is not None:
                    task.cancel()
                await self._on_lost(p)

    async def _take(self, wanted: int) -> None:
        ttl_ms = int(self.ttl * 1000)
        free = [p for p in range(self.spec.partitions) if p not in self.owned]
        for p in sorted(free, key=self._preference):
            if wanted <= 0:
                return
            if await self._acquire(keys=[self._lease(p)], args=[self.instance_id, ttl_ms]):
                self.owned.add(p)
                wanted -= 1
                log.info(
                    "%s took %s[%d] in group %s", self.instance_id, self.spec.name, p, self.group
                )
                await self._on_acquire(p)

    async def _give_back(self, p: int) -> None:
        try:
            await self._on_drain(p)
            await self._release(keys=[self._lease(p)], args=[self.instance_id])
            self.owned.discard(p)
            log.info(
                "%s gave back %s[%d] in group %s", self.instance_id, self.spec.name, p, self.group
            )
        finally:
            self._releasing.pop(p, None)

    async def release_all(self) -> None:
        """Drain and give back every partition, and leave the members set (graceful shutdown)."""
        for task in list(self._releasing.values()):
            task.cancel()
        self._releasing.clear()
        for p in sorted(self.owned):
            await self._on_drain(p)
        await asyncio.gather(
            *(self._release(keys=[self._lease(p)], args=[self.instance_id]) for p in self.owned)
        )
        self.owned.clear()
        await self._client.zrem(self._members, self.instance_id)
