"""Typed pub/sub: sharded (``SPUBLISH``/``SSUBSCRIBE``) on a cluster, plain on a single node.

>>> pubsub = PubSub(client)
>>> async with pubsub.subscribe("chat:rt:{conv:42}", Typing) as sub:
...     await pubsub.publish("chat:rt:{conv:42}", Typing(user="u1"))
...     async for message in sub:
...         ...

Subscriptions are multiplexed: a :class:`PubSub` holds at most one subscriber connection per
cluster primary (one in all on a single node), named ``name`` in ``CLIENT LIST``, and every
channel it listens to is subscribed on the connection of the primary owning the channel's slot.
Subscribes and unsubscribes queued in the same moment go out in one write (one ``SSUBSCRIBE``
per hash slot), so joining a thousand channels takes a few round trips, not a thousand
(:meth:`PubSub.listen` takes many channels at once; concurrent ``subscribe`` calls batch too).
One reader per connection hands every message to its channel's receivers without ever waiting
on them, so a slow consumer cannot stall the other channels of its connection.

A channel follows its slot: after a dropped connection, a failover or a restart of the node
(every channel of that connection), or a slot migration (Redis sends an unsolicited
``sunsubscribe``, or refuses a subscribe with ``MOVED``: that channel alone), the cluster map is
refreshed and the channel subscribed on its new owner, with exponential backoff and jitter while
that fails. An idle connection is probed with ``PING`` so a silently dead peer is noticed.

Pub/sub is at-most-once: messages published while a channel is being re-established are lost
(``Subscription.gaps`` counts the re-subscriptions of that channel, ``Listener.on_gap`` is
called). Durable facts travel in streams.

Delivery into a :class:`Subscription`'s bounded queue follows the message's drop policy:

* droppable (typing, presence: ``publish(..., droppable=True)`` or a ``droppable = True`` class
  variable on the message type): dropped when the queue is full, and counted;
* everything else waits in a bounded overflow (as many again as the queue) for at most
  ``overflow_timeout``; past that the subscription alone is closed and its consumer gets
  :class:`SlowConsumerError` after the queued messages, never a silent loss.
  ``overflow_timeout=None`` never closes it (the overflow is then unbounded).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from redis.asyncio import RedisCluster

from shared.codec import Codec
from shared.pubsub.multiplexer import CONNECTIONS, RESUBSCRIPTIONS, Multiplexer
from shared.pubsub.subscription import (
    DROPPABLE,
    DROPS,
    SLOW_CONSUMERS,
    UNDECODABLE,
    PubSubError,
    SlowConsumerError,
    Subscription,
    decode,
)
from shared.redis.client import AnyRedis

__all__ = [
    "CONNECTIONS",
    "DROPS",
    "RESUBSCRIPTIONS",
    "SLOW_CONSUMERS",
    "UNDECODABLE",
    "Listener",
    "PubSub",
    "PubSubError",
    "SlowConsumerError",
    "Subscription",
]

M = TypeVar("M", bound=msgspec.Struct)
M_contra = TypeVar("M_contra", bound=msgspec.Struct, contravariant=True)


class Listener(Protocol[M_contra]):
    """A consumer called back with the messages of its channels (:meth:`PubSub.listen`)."""

    def on_message(self, channel: str, message: M_contra) -> None:
        """A decoded message of ``channel``; must return quickly and never block."""

    def on_gap(self, channel: str) -> None:
        """``channel`` was re-established: messages may have been lost."""

    def on_failure(self, channel: str, error: Exception) -> None:
        """``channel`` can no longer be delivered (a bug in the reader)."""


class _Callback(Generic[M]):
    """A :class:`Listener` on one channel, as the multiplexer's receiver."""

    __slots__ = ("_channel", "_codec", "_listener")

    def __init__(self, channel: str, codec: Codec[M], listener: Listener[M]) -> None:
        self._channel, self._codec, self._listener = channel, codec, listener

    def receive(self, payload: bytes) -> None:
        message = decode(self._codec, self._channel, payload)
        if message is not None:
            self._listener.on_message(self._channel, message)

    def gap(self) -> None:
        self._listener.on_gap(self._channel)

    def fail(self, error: Exception) -> None:
        self._listener.on_failure(self._channel, error)


class PubSub:
    """Publish typed messages and open subscriptions on one client (cluster or single node)."""

    def __init__(
        self,
        client: AnyRedis,
        *,
        queue_size: int = 1024,
        overflow_timeout: float | None = 5.0,
        health_interval: float = 1.0,
        connect_timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        self.client = client
        self.sharded = isinstance(client, RedisCluster)
        self.queue_size = queue_size
        self.overflow_timeout = overflow_timeout
        self.health_interval = health_interval
        self.connect_timeout = connect_timeout
        self.name = name or _default_name(client)
        """The client name of the subscriber connections in ``CLIENT LIST``: by default the
        client's own name (a service's instance id) + ``-pubsub``."""
        self._codecs: dict[type[Any], Codec[Any]] = {}
        self._mux = Multiplexer(
            client, name=self.name, health_interval=health_interval, connect_timeout=connect_timeout
        )

    def codec(self, type_: type[M]) -> Codec[M]:
        """The (cached) codec of a message type."""
        codec = self._codecs.get(type_)
        if codec is None:
            codec = self._codecs[type_] = Codec(type_)
        return codec

    @property
    def command(self) -> str:
        """The publish command of this client: SPUBLISH on a cluster (sharded), else PUBLISH."""
        return "SPUBLISH" if self.sharded else "PUBLISH"

    def encode(self, message: msgspec.Struct, *, droppable: bool | None = None) -> bytes:
        """The payload published for ``message`` (a script may publish it with its own writes).

        ``droppable`` defaults to the message class's ``droppable`` attribute, else ``False``.
        """
        if droppable is None:
            droppable = bool(getattr(type(message), "droppable", False))
        return bytes((DROPPABLE if droppable else 0,)) + self.codec(type(message)).encode(message)

    async def publish(
        self, channel: str, message: msgspec.Struct, *, droppable: bool | None = None
    ) -> int:
        """Publish ``message``; returns how many subscribers (of the shard) received it."""
        payload = self.encode(message, droppable=droppable)
        return int(await self.client.execute_command(self.command, channel, payload))

    async def publish_many(self, messages: Sequence[tuple[str, msgspec.Struct]]) -> list[int]:
        """Publish several ``(channel, message)`` in one pipeline (one send per node); returns
        the receiver counts in order. Messages for one channel keep their order."""
        if not messages:
            return []
        if len(messages) == 1:  # the usual case: no pipeline to build
            return [await self.publish(*messages[0])]
        async with self.client.pipeline(transaction=False) as pipe:
            for channel, message in messages:
                pipe.execute_command(self.command, channel, self.encode(message))
            return [int(n) for n in await pipe.execute()]

    def subscribe(
        self,
        channel: str,
        type_: type[M],
        *,
        queue_size: int | None = None,
    ) -> Subscription[M]:
        """A subscription to use as ``async with``; it is live once the block is entered."""
        return Subscription(
            self._mux,
            channel,
            self.codec(type_),
            queue_size=queue_size or self.queue_size,
            overflow_timeout=self.overflow_timeout,
        )

    async def listen(self, channels: Iterable[str], type_: type[M], listener: Listener[M]) -> None:
        """Call ``listener`` back with the messages of ``channels`` (subscribed together).

        Returns once all are live; raises :class:`PubSubError` after ``connect_timeout`` if some
        are not (they stay registered, and ``listener.on_gap`` says when they become live).
        A listener on a channel is known by identity: listening twice replaces the first.
        """
        codec = self.codec(type_)
        receivers = {channel: _Callback(channel, codec, listener) for channel in channels}
        try:
            await self._mux.attach(receivers, listener)
        except TimeoutError as e:
            raise PubSubError(str(e)) from None

    def unlisten(self, channels: Iterable[str], listener: Listener[Any]) -> None:
        """Stop calling ``listener`` for ``channels``; a channel's last one unsubscribes it."""
        self._mux.detach(channels, listener)

    def is_live(self, channel: str) -> bool:
        """Whether ``channel`` is subscribed on Redis now."""
        return self._mux.is_live(channel)

    @property
    def connections(self) -> int:
        """The subscriber connections this object holds now (at most one per primary)."""
        return self._mux.connections


def _default_name(client: AnyRedis) -> str:
    options = (
        client.nodes_manager.connection_kwargs
        if isinstance(client, RedisCluster)
        else client.connection_pool.connection_kwargs
    )
    return f"{options.get('client_name') or 'parley'}-pubsub"
