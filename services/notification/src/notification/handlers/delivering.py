"""Dispatch and delivery: in-app at once after the commit; outbound channels through the queue.

The in-app announcement is one publish on the user's channel and one stream entry, so it is sent
by the handler that created the notification, right after its commit: a round trip through the
delivery queue would double the work of every notification and add a hop of latency. Outbound
channels (log, webhook) may be slow or fail, so they go through the queue and its workers, which
retry, record the outcome in ``deliveries`` and dead-letter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from contracts.base import utcnow
from notification.domain.delivery import ChannelName, DeliveryJob
from notification.domain.errors import DeliveryFailedError
from notification.store.protocols import Channel, DeliveryQueue, InstantChannel, NotificationStore

log = logging.getLogger(__name__)


class Dispatcher:
    """Hands committed jobs on: instant ones to their channel now, queued ones to the queue."""

    def __init__(
        self, *, queue: DeliveryQueue, instant: Mapping[ChannelName, InstantChannel]
    ) -> None:
        self._queue = queue
        self._instant = instant

    async def dispatch(
        self, jobs: Sequence[DeliveryJob], *, unread: Mapping[str, int] | None = None
    ) -> None:
        """Queue the outbound jobs, then announce the in-app ones (together, per channel).

        ``unread``: badge counts by user id, when the caller has them (others are looked up).

        A failed announcement is logged, not raised: the notification is stored and counted, and
        the client lists it on its next read; retrying the whole event would create nothing new.
        """
        queued = [j for j in jobs if j.queued]
        if queued:
            await self._queue.enqueue(queued)
        instant = [j for j in jobs if not j.queued]
        if not instant:
            return
        counts = unread or {}
        by_channel: dict[ChannelName, list[tuple[DeliveryJob, int | None]]] = {}
        for job in instant:
            by_channel.setdefault(job.channel, []).append(
                (job, counts.get(job.notification.user_id))
            )
        for name, batch in by_channel.items():
            try:
                await self._instant[name].announce_many(batch)
            except Exception as e:
                log.warning(
                    "in-app announcement of %d notification(s) (%s...) failed: %r",
                    len(batch),
                    batch[0][0].notification.id,
                    e,
                )


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
