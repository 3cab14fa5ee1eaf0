"""Typed pub/sub: sharded (``SPUBLISH``/``SSUBSCRIBE``) on a cluster, plain on a single node.

>>> pubsub = PubSub(client)
>>> async with pubsub.subscribe("chat:rt:{conv:42}", Typing) as sub:
...     await pubsub.publish("chat:rt:{conv:42}", Typing(user="u1"))
...     async for message in sub:
...         ...

Each subscription owns one dedicated connection to the primary that owns its channel's slot,
and a background reader that keeps it subscribed: after a dropped connection, a failover, a
restart of the node or a slot migration (Redis then sends an unsolicited ``sunsubscribe``), it
refreshes the cluster map, finds the channel's new owner and subscribes again, with exponential
backoff and jitter. An idle connection is probed with ``PING`` so a silently dead peer is noticed.

Pub/sub is at-most-once: messages published while a subscriber is reconnecting are lost
(``Subscription.gaps`` counts the reconnections). Durable facts travel in streams.

Delivery into the subscriber's bounded queue follows the message's drop policy:

* droppable (typing, presence: ``publish(..., droppable=True)`` or a ``droppable = True`` class
  variable on the message type): dropped when the queue is full, and counted;
* everything else: back-pressure. The reader stops reading the socket until the consumer makes
  room; if that takes longer than ``overflow_timeout``, the subscription is closed and the
  consumer gets :class:`SlowConsumerError` after the queued messages, never a silent loss.
  With ``overflow_timeout=None`` the reader waits forever and Redis's own
  ``client-output-buffer-limit pubsub`` eventually cuts the connection (counted as a gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Final, Generic, TypeVar

import msgspec
from prometheus_client import Counter
from redis.asyncio import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from shared.codec import Codec, CodecError
from shared.redis.client import AnyRedis

M = TypeVar("M", bound=msgspec.Struct)

log = logging.getLogger(__name__)

# A subscription that meets one of these resubscribes. RedisClusterException is not a RedisError:
# redis-py raises it when no node answers a cluster-map refresh (the whole cluster is away).
_LOST = (RedisError, RedisClusterException, OSError, TimeoutError)

_DROPPABLE: Final = 0x01

DROPS = Counter("parley_pubsub_dropped_total", "Droppable pub/sub messages dropped: queue full")
RESUBSCRIPTIONS = Counter(
    "parley_pubsub_resubscriptions_total", "Pub/sub subscriptions re-established after a loss"
)
UNDECODABLE = Counter(
    "parley_pubsub_undecodable_total", "Pub/sub messages skipped: corrupt or of another schema"
)
SLOW_CONSUMERS = Counter(
    "parley_pubsub_slow_consumer_total", "Subscriptions closed: consumer fell behind too long"
)


class PubSubError(Exception):
    """Root of the pub/sub errors."""


class SlowConsumerError(PubSubError):
    """The consumer left a non-droppable message waiting longer than ``overflow_timeout``."""


class _Ended:
    """Put in a subscription's queue when its reader has ended: wakes a consumer waiting."""


_ENDED = _Ended()


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
    ) -> None:
        self.client = client
        self.sharded = isinstance(client, RedisCluster)
        self.queue_size = queue_size
        self.overflow_timeout = overflow_timeout
        self.health_interval = health_interval
        self.connect_timeout = connect_timeout
        self._codecs: dict[type[Any], Codec[Any]] = {}

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
        return bytes((_DROPPABLE if droppable else 0,)) + self.codec(type(message)).encode(message)

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
        self, channel: str, type_: type[M], *, queue_size: int | None = None
    ) -> Subscription[M]:
        """A subscription to use as ``async with``; it is live once the block is entered."""
        return Subscription(self, channel, type_, queue_size=queue_size or self.queue_size)


class Subscription(Generic[M]):
    """The messages of one channel, decoded to ``type_``; iterate with ``async for``."""

    def __init__(self, pubsub: PubSub, channel: str, type_: type[M], *, queue_size: int) -> None:
        self.channel = channel
        self.dropped = 0
        """Droppable messages dropped because the queue was full."""
        self.gaps = 0
        """Times the subscription was re-established (messages may have been missed)."""
        self._pubsub = pubsub
        self._codec = pubsub.codec(type_)
        self._queue: asyncio.Queue[M | _Ended] = asyncio.Queue(queue_size)
        self._ready: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._failure: PubSubError | None = None
        self._wire_channel = channel.encode()

    async def __aenter__(self) -> Subscription[M]:
        self._ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"pubsub:{self.channel}")
        self._task.add_done_callback(self._reader_ended)
        done, _ = await asyncio.wait(
            {self._ready, self._task},
            timeout=self._pubsub.connect_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self._ready not in done:
            await self.aclose()
            raise PubSubError(f"could not subscribe to {self.channel!r}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Unsubscribe and stop the reader (one that had failed is logged, not raised)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("the reader of %s had failed", self.channel)

    def __aiter__(self) -> AsyncIterator[M]:
        return self

    async def __anext__(self) -> M:
        if self._failure is not None and self._queue.empty():
            raise self._failure
        message = await self._queue.get()
        if isinstance(message, _Ended):
            self._queue.put_nowait(message)  # every later call raises too
            raise self._failure or PubSubError(f"the reader of {self.channel!r} ended")
        return message

    def _reader_ended(self, task: asyncio.Task[None]) -> None:
        """Tell the consumer, rather than leave it waiting for messages that cannot come."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self._failure is None:
            self._failure = PubSubError(f"the reader of {self.channel!r} failed: {error!r}")
        if self._failure is not None:
            with contextlib.suppress(asyncio.QueueFull):  # a full queue is drained, then raises
                self._queue.put_nowait(_ENDED)

    async def get(self, timeout: float | None = None) -> M:  # noqa: ASYNC109
        """The next message; raises ``TimeoutError`` if none comes within ``timeout`` seconds."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def _run(self) -> None:
        attempt = 0
        while True:
            conn: Any = None
            try:
                conn, owner = await self._open()
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(None)
                else:
                    self.gaps += 1
                    RESUBSCRIPTIONS.inc()
                attempt = 0
                await self._pump(conn, owner)
            except SlowConsumerError as e:
                SLOW_CONSUMERS.inc()
                self._failure = e
                return
            except _LOST as e:
                log.info("pub/sub %s lost (%s); resubscribing", self.channel, e)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.disconnect()
            attempt += 1
            await asyncio.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
            await self._refresh_topology()

    async def _open(self) -> tuple[Any, str | None]:
        """A fresh connection subscribed to the channel, and the name of the node it is on."""
        client = self._pubsub.client
        conn: Any  # redis-py's Connection; its connect() is untyped
        if isinstance(client, RedisCluster):
            node = client.get_node_from_key(self.channel)
            if node is None:
                raise RedisError(f"no node owns the slot of {self.channel!r}")
            conn = node.connection_class(**node.connection_kwargs)
            command, owner = "SSUBSCRIBE", node.name
        else:
            conn = client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            command, owner = "SUBSCRIBE", None
        await conn.connect()
        await conn.send_command(command, self.channel)
        reply = await conn.read_response(
            timeout=self._pubsub.connect_timeout, push_request=True, disable_decoding=True
        )
        if not (isinstance(reply, list) and reply[0] == command.lower().encode()):
            await conn.disconnect()
            raise RedisError(f"unexpected reply to {command}: {reply!r}")
        return conn, owner

    async def _pump(self, conn: Any, owner: str | None) -> None:
        """Read pushes until the connection fails or the channel moves to another node."""
        awaiting_pong = False
        while True:
            reply = await conn.read_response(
                timeout=self._pubsub.health_interval, push_request=True, disable_decoding=True
            )
            if reply is None:  # idle for a whole interval
                if awaiting_pong:
                    raise TimeoutError("no PONG from the pub/sub connection")
                if owner is not None and self._owner() != owner:
                    return  # the slot moved (the client's map saw it): follow it
                await conn.send_command("PING")
                awaiting_pong = True
            elif isinstance(reply, list) and reply[0] in (b"smessage", b"message"):
                if reply[1] == self._wire_channel:
                    await self._deliver(reply[2])
            elif isinstance(reply, list) and reply[0] in (b"sunsubscribe", b"unsubscribe"):
                return  # the server unsubscribed us: the slot was migrated away
            else:
                awaiting_pong = False  # PONG (RESP3) or [b"pong", b""] (RESP2)

    def _owner(self) -> str | None:
        client = self._pubsub.client
        if not isinstance(client, RedisCluster):
            return None
        try:
            node = client.get_node_from_key(self.channel)
        except RedisError:
            return None
        return None if node is None else str(node.name)

    async def _deliver(self, frame: bytes) -> None:
        try:
            message = self._codec.decode(memoryview(frame)[1:])
        except CodecError as e:
            UNDECODABLE.inc()
            log.warning("undecodable message on %s: %s", self.channel, e)
            return
        if not self._queue.full():
            self._queue.put_nowait(message)
        elif frame[0] & _DROPPABLE:
            self.dropped += 1
            DROPS.inc()
        elif (timeout := self._pubsub.overflow_timeout) is None:
            await self._queue.put(message)
        else:
            try:
                await asyncio.wait_for(self._queue.put(message), timeout)
            except TimeoutError:
                raise SlowConsumerError(
                    f"consumer of {self.channel!r} kept a full queue for {timeout}s"
                ) from None

    async def _refresh_topology(self) -> None:
        client = self._pubsub.client
        if isinstance(client, RedisCluster):
            try:
                await client.nodes_manager.initialize()
            except _LOST as e:
                log.info("cluster map refresh failed (%s); will retry", e)
