"""Delivery workers: hand a queued notification to its channel and record the outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from contracts.base import utcnow
from notification.domain.delivery import ChannelName, DeliveryJob
from notification.domain.errors import DeliveryFailedError
from notification.store.protocols import Channel, NotificationStore


class DeliveryHandlers:
    """Runs one delivery job; DeliveryFailedError (after the channel's retries) is final."""

    def __init__(
        self,
        *,
        store: NotificationStore,
        channels: Mapping[ChannelName, Channel],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._channels = channels
        self._clock = clock

    async def deliver(self, job: DeliveryJob) -> None:
        """Deliver, then record ``delivered``; on a final failure record ``dead_lettered``."""
        channel = self._channels.get(job.channel)
        if channel is None:
            raise DeliveryFailedError(f"no channel {job.channel!r} configured", attempts=0)
        try:
            attempts = await channel.send(job)
        except DeliveryFailedError as e:
            await self._record(job, "dead_lettered", e.attempts, str(e))
            raise
        await self._record(job, "delivered", attempts, None)

    async def _record(
        self,
        job: DeliveryJob,
        status: str,
        attempts: int,
        error: str | None,
    ) -> None:
        async with self._store.unit() as unit:
            await unit.record_outcome(
                job.notification.id,
                job.channel,
                status="delivered" if status == "delivered" else "dead_lettered",
                attempts=attempts,
                error=error,
                at=self._clock(),
            )
