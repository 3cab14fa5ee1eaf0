"""The :class:`~chat.store.protocols.EventSink` of the service: stream events plus real-time.

An event goes to ``chat.events`` (partition of its conversation) through the shared
:class:`~shared.bus.Publisher`, then to ``rt:{conv:<id>}`` (and to ``rt:{user:<id>}`` of the users
it concerns) as a :class:`contracts.realtime.Frame` (``[envelope, payload]``, the one payload
shape of real-time channels) through :class:`~shared.pubsub.PubSub`, under the stream event's own
envelope. The append and the frames go out together (the frames in one pipeline): the stream is
the record, and a failed append fails the handler, which is retried and emits again under the
same envelope id (consumers and the gateway drop the copy); the channel is the fast path and a
failure there is logged, not raised. Sending them one after the other would add a round trip to
every message's delivery.

A message's own events are announced differently: :meth:`BusEvents.announcement` gives the
encoded frame to the message store, whose cache-write script publishes it in the same call (the
recent-message hash and the channel share the conversation's slot), and ``emit(...,
announced=...)`` then only appends the stream entry, under the same envelope.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import msgspec

from chat.store.protocols import Announcement
from contracts import realtime, registry
from contracts.base import ChannelMessage, Envelope, Event
from shared.bus import Publisher
from shared.pubsub import PubSub

log = logging.getLogger(__name__)


class BusEvents:
    """Announces chat changes on the stream and the real-time channels."""

    def __init__(self, publisher: Publisher, pubsub: PubSub) -> None:
        self._publisher = publisher
        self._pubsub = pubsub
        self._conv = registry.channel("rt.conv")
        self._user = registry.channel("rt.user")

    def announcement(self, event: object, *, envelope_id: str | None = None) -> Announcement:
        """``event``'s frame for its conversation's channel, encoded, with its envelope."""
        assert isinstance(event, Event)
        envelope = self._envelope(event, envelope_id)
        return Announcement(
            command=self._pubsub.command,
            channel=self._conv.key(str(event.partition_value())),
            payload=self._pubsub.encode(realtime.frame_with(envelope, event)),
            envelope=envelope,
        )

    async def emit(
        self,
        event: object,
        *,
        envelope_id: str | None = None,
        users: Iterable[str] = (),
        announced: Announcement | None = None,
    ) -> None:
        """Append to ``chat.events``, then publish on the conversation's and users' channels
        (the conversation's only when not ``announced`` there already)."""
        assert isinstance(event, Event)
        if announced is not None:
            envelope = announced.envelope
            channels = [self._user.key(u) for u in users]
        else:
            envelope = self._envelope(event, envelope_id)
            channels = [self._conv.key(str(event.partition_value()))]
            channels += [self._user.key(u) for u in users]
        if not channels:
            await self._publisher.publish(event, envelope=envelope)
            return
        frame = realtime.frame_with(envelope, event)

        async def fast_path() -> None:
            try:
                await self._pubsub.publish_many([(channel, frame) for channel in channels])
            except Exception:
                log.warning("real-time publish on %s failed", ", ".join(channels), exc_info=True)

        await asyncio.gather(self._publisher.publish(event, envelope=envelope), fast_path())

    def _envelope(self, event: Event, envelope_id: str | None) -> Envelope:
        envelope = self._publisher.envelope_for(event)
        if envelope_id is not None:
            envelope = msgspec.structs.replace(envelope, id=envelope_id)
        return envelope

    async def flash(self, message: object) -> None:
        """Publish a droppable real-time-only message on its conversation's channel."""
        assert isinstance(message, ChannelMessage)
        frame = realtime.frame_with(self._publisher.envelope_for(message), message)
        channel = self._conv.key(str(message.partition_value()))
        await self._pubsub.publish(channel, frame, droppable=True)
