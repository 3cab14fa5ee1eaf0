"""In-app delivery: the user's personal real-time channel ``rt:{user:<id>}`` and our events.

The channel carries :class:`contracts.realtime.Frame` (envelope + payload), the one payload shape
of real-time channels; the frame and the ``notification.events`` entry share one envelope, so a
client can drop the copy it gets twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from contracts import realtime, registry
from contracts.base import Message
from contracts.notification import NotificationCreated, NotificationsRead
from notification.domain.delivery import ChannelName, DeliveryJob
from notification.store.wire import to_wire
from shared.bus import Publisher
from shared.pubsub import PubSub

UnreadCounter = Callable[[str], Awaitable[int]]

_LOOKUPS = 8
"""Badge counts looked up at once when announcing (each may read the database)."""


class InAppChannel:
    """Publishes on the personal channel (fast path) and on ``notification.events`` (durable)."""

    name: ClassVar[ChannelName] = "in_app"

    def __init__(self, pubsub: PubSub, publisher: Publisher, *, unread: UnreadCounter) -> None:
        self._pubsub = pubsub
        self._publisher = publisher
        self._unread = unread
        self._channel = registry.channel("rt.user")

    async def send(self, job: DeliveryJob) -> int:
        """Announce one notification with the user's current badge count (a queued job)."""
        await self.announce_many([(job, None)])
        return 1

    async def announce_many(self, jobs: Sequence[tuple[DeliveryJob, int | None]]) -> None:
        """Announce notifications together: the frames in one pipeline, the events in one
        coalesced append; a badge count that is None is looked up first."""
        lookups = asyncio.Semaphore(_LOOKUPS)  # missing counters load a few at a time

        async def count_of(user_id: str, known: int | None) -> int:
            if known is not None:
                return known
            async with lookups:
                return await self._unread(user_id)

        counts = await asyncio.gather(
            *(count_of(job.notification.user_id, count) for job, count in jobs)
        )
        await self._announce(
            [
                (
                    job.notification.user_id,
                    NotificationCreated(
                        user_id=job.notification.user_id,
                        notification=to_wire(job.notification),
                        unread_count=count,
                    ),
                )
                for (job, _), count in zip(jobs, counts, strict=True)
            ]
        )

    async def read(
        self, user_id: str, *, ids: Sequence[str], conversation_id: str | None, unread_count: int
    ) -> None:
        """Announce notifications marked read (the user's other devices clear them too)."""
        event = NotificationsRead(
            user_id=user_id,
            ids=list(ids)[:1000],
            conversation_id=conversation_id,
            unread_count=unread_count,
        )
        await self._announce([(user_id, event)])

    async def _announce(self, events: Sequence[tuple[str, Message]]) -> None:
        """Each ``(user id, event)`` on the user's channel (one pipeline) and on our stream."""
        stamped = [
            (user_id, event, self._publisher.envelope_for(event)) for user_id, event in events
        ]
        await self._pubsub.publish_many(
            [(self._channel.key(u), realtime.frame_with(env, e)) for u, e, env in stamped]
        )
        await asyncio.gather(*(self._publisher.publish(e, envelope=env) for _, e, env in stamped))
