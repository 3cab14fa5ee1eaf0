"""Publisher of personal real-time channels: ``rt:{user:<id>}`` through ``shared.pubsub``."""

from __future__ import annotations

from contracts import realtime, registry
from contracts.base import Message
from shared.pubsub import PubSub


class PubSubPersonalChannels:
    """:class:`~user.store.protocols.PersonalChannels` over sharded pub/sub.

    Messages are marked droppable: presence is ephemeral and a slow gateway must not hold back
    the others (the stream event is the durable record). Every message travels as a
    :class:`contracts.realtime.Frame`, the one payload shape of real-time channels.
    """

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub
        self._family = registry.channel("rt.user")

    def channel(self, user_id: str) -> str:
        """The personal channel of ``user_id``."""
        return self._family.key(user_id)

    async def send(self, user_id: str, message: Message) -> None:
        """Publish ``message`` on ``user_id``'s personal channel."""
        frame = realtime.frame(message, producer="user")
        await self._pubsub.publish(self.channel(user_id), frame, droppable=True)
