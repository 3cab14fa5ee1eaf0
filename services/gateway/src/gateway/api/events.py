"""The gateway's event consumers: revocations and key rotations per instance; cache invalidation
once for the fleet.

- ``gateway.<instance id>`` (the registry's per-instance ``gateway`` group) reads ``auth.events``:
  each instance holds its own revoked-session set and key set, so each must see every event. It
  starts at the streams' end (``$``): older revocations come from Redis
  (``gateway:revoked:{sessions}``). On a clean stop the instance's groups are destroyed, so they
  never hold back stream trimming; the groups of instances that crashed are destroyed by the
  survivors, which sweep at start and every ``sweep_interval`` seconds for groups whose instance
  no longer heartbeats (:func:`shared.bus.admin.sweep_instance_groups`).
- ``gateway.cache`` (shared) reads the events that make cached responses stale. The response and
  GraphQL caches live in Redis and are shared by every instance, so one instance dropping an
  entry drops it for all: reading these events once per instance would multiply the work by the
  number of gateways for nothing. The group is created at the streams' end on first start and
  outlives instances, like any service group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from contracts import registry
from contracts.base import Envelope
from contracts.topology import GroupSpec
from shared.bus import Consumer, ConsumerSettings
from shared.bus.admin import sweep_instance_groups
from shared.bus.metrics import process_metrics
from shared.redis.client import AnyRedis

log = logging.getLogger(__name__)

EventHandlers = dict[type[Any], Callable[[Any, Envelope], Awaitable[None]]]

INSTANCE_GROUP = "gateway"
CACHE_GROUP = "gateway.cache"


def _shared_groups() -> set[str]:
    """The gateway's groups that are not per instance (never swept)."""
    return {g.name for g in registry.GROUPS if g.service == "gateway" and not g.per_instance}


class GatewayEvents:
    """Start/stop one consumer of ``group`` (a registry group name) over ``handlers``."""

    def __init__(
        self,
        client: AnyRedis,
        handlers: EventHandlers,
        *,
        group: str,
        instance_id: str,
        settings: ConsumerSettings | None = None,
        sweep_interval: float = 300.0,
    ) -> None:
        self._client = client
        self._sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None
        self.spec: GroupSpec = registry.group(group)
        self.group = self.spec.instance_group(instance_id)
        self._streams = {registry.stream_of(cls) for cls in handlers}
        outside = {s.name for s in self._streams} - set(self.spec.streams)
        if outside:
            raise ValueError(f"group {group} does not read {', '.join(sorted(outside))}")
        self._consumer = Consumer(
            client,
            group=self.group,
            handlers=handlers,
            metrics=process_metrics(),
            instance_id=instance_id,
            settings=settings,
            producer="gateway",
            start_id="$",
        )

    async def start(self) -> None:
        """Create the groups at the streams' end (when new) and start reading; a per-instance
        consumer also starts sweeping the groups of dead instances."""
        await self._consumer.start()
        if self.spec.per_instance:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name=f"sweep {self.group}")

    async def sweep(self) -> int:
        """Destroy the groups of instances that stopped heartbeating; how many were removed."""
        removed = 0
        for spec in self._streams:
            for gone in await sweep_instance_groups(
                self._client, spec, self.spec.name, keep={self.group, *_shared_groups()}
            ):
                log.warning(
                    "removed group %s of a stopped instance from %s (%d entries pending)",
                    gone.group,
                    gone.key,
                    gone.pending,
                )
                removed += 1
        return removed

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as e:  # Redis trouble: the next round tries again
                log.warning("sweeping stopped instances' groups failed: %r", e)
            await asyncio.sleep(self._sweep_interval)

    async def stop(self, *, destroy: bool = True) -> None:
        """Stop reading; a per-instance group is removed too (unless ``destroy`` is False)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.wait({self._sweeper}, timeout=5)
        await self._consumer.stop()
        if not destroy or not self.spec.per_instance:
            return
        for spec in self._streams:
            for key in spec.partition_keys():
                with contextlib.suppress(Exception):
                    await self._client.xgroup_destroy(key, self.group)
