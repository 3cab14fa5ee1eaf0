"""In-app delivery: the user's personal real-time channel ``rt:{user:<id>}``.

The channel carries :class:`contracts.realtime.Frame` (envelope + payload), the one payload shape
of real-time channels. A frame carries the envelope and payload of the ``notification.events``
entry staged in the outbox with the notification, so a client can drop the copy it gets twice.
Frames are best effort: a client that missed one lists the stored notifications.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

import msgspec

from contracts import realtime, registry
from notification.domain.delivery import ChannelName, DeliveryJob
from notification.store.wire import created_event
from shared.bus import Publisher, wire
from shared.outbox import Staged
from shared.pubsub import PubSub

UnreadCounter = Callable[[str], Awaitable[int]]


def frame_of(staged: Staged) -> realtime.Frame:
    """The real-time frame of a staged stream entry: its envelope and its encoded payload."""
    return realtime.Frame(staged.envelope, msgspec.Raw(staged.fields[wire.PAYLOAD]))


class InAppChannel:
    """Pushes staged events on their users' channels; delivers in-app jobs found on the queue."""

    name: ClassVar[ChannelName] = "in_app"

    def __init__(self, pubsub: PubSub, publisher: Publisher, *, unread: UnreadCounter) -> None:
        self._pubsub = pubsub
        self._publisher = publisher
        self._unread = unread
        self._channel = registry.channel("rt.user")

    async def push(self, events: Sequence[tuple[str, Staged]]) -> None:
        """Each ``(user id, staged event)`` on the user's channel, in one pipeline."""
        await self._pubsub.publish_many(
            [(self._channel.key(user_id), frame_of(staged)) for user_id, staged in events]
        )

    async def send(self, job: DeliveryJob) -> int:
        """Announce one notification found on the delivery queue (as earlier versions queued
        in-app jobs) with the user's current badge count: the frame and the stream event."""
        user_id = job.notification.user_id
        event = created_event(job.notification, await self._unread(user_id))
        envelope = self._publisher.envelope_for(event)
        await self._pubsub.publish(self._channel.key(user_id), realtime.frame_with(envelope, event))
        await self._publisher.publish(event, envelope=envelope)
        return 1
