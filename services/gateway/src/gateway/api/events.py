"""The gateway's per-instance event consumer: revocations, key rotations, cache invalidation.

Every instance reads with its own group ``gateway.<instance id>`` (the registry's per-instance
``gateway`` group), because each holds its own revoked-session set and key set. It starts at the
streams' end (``$``): older revocations come from Redis (``gateway:revoked:{sessions}``), and
older changes only concern entries that have expired or were invalidated by another instance.
On a clean stop the instance's groups are destroyed, so they never hold back stream trimming.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from contracts import registry
from contracts.base import Envelope
from shared.bus import Consumer, ConsumerSettings
from shared.redis.client import AnyRedis

log = logging.getLogger(__name__)

EventHandlers = dict[type[Any], Callable[[Any, Envelope], Awaitable[None]]]


class InstanceEvents:
    """Start/stop the per-instance consumer over ``handlers`` (message class -> handler)."""

    def __init__(
        self,
        client: AnyRedis,
        handlers: EventHandlers,
        *,
        instance_id: str,
        settings: ConsumerSettings | None = None,
    ) -> None:
        self._client = client
        self.group = registry.group("gateway").instance_group(instance_id)
        self._streams = {registry.stream_of(cls) for cls in handlers}
        self._consumer = Consumer(
            client,
            group=self.group,
            handlers=handlers,
            instance_id=instance_id,
            settings=settings,
            producer="gateway",
            start_id="$",
        )

    async def start(self) -> None:
        """Create the groups at the streams' end and start reading."""
        await self._consumer.start()

    async def stop(self, *, destroy: bool = True) -> None:
        """Stop reading; with ``destroy``, remove this instance's groups."""
        await self._consumer.stop()
        if not destroy:
            return
        for spec in self._streams:
            for key in spec.partition_keys():
                with contextlib.suppress(Exception):
                    await self._client.xgroup_destroy(key, self.group)
