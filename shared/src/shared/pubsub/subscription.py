"""One channel's messages for one consumer, queued (see :mod:`shared.pubsub`)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import msgspec
from prometheus_client import Counter

from shared.codec import Codec, CodecError

if TYPE_CHECKING:
    from shared.pubsub.multiplexer import Multiplexer

M = TypeVar("M", bound=msgspec.Struct)

log = logging.getLogger(__name__)

DROPPABLE: Final = 0x01
"""The flag, in a payload's first byte, of a message that may be dropped under back-pressure."""

DROPS = Counter("parley_pubsub_dropped_total", "Droppable pub/sub messages dropped: queue full")
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


def decode(codec: Codec[M], channel: str, payload: bytes) -> M | None:
    """The message in ``payload`` (after its flag byte), or ``None`` (counted) if undecodable."""
    try:
        return codec.decode(memoryview(payload)[1:])
    except CodecError as e:
        UNDECODABLE.inc()
        log.warning("undecodable message on %s: %s", channel, e)
        return None


class Subscription(Generic[M]):
    """The messages of one channel, decoded to ``type_``; iterate with ``async for``.

    Its queue holds ``queue_size`` messages. A droppable message finding it full is dropped
    (``dropped``); any other waits in an overflow of up to ``queue_size`` more for at most
    ``overflow_timeout`` seconds. Past either bound the subscription is closed and the consumer
    gets :class:`SlowConsumerError` after the ``queue_size`` oldest messages; the connection,
    shared with other channels, keeps reading. ``overflow_timeout=None``: the overflow has no
    bound at all (for consumers trusted to keep up, such as a reply channel).
    """

    def __init__(
        self,
        mux: Multiplexer,
        channel: str,
        codec: Codec[M],
        *,
        queue_size: int,
        overflow_timeout: float | None,
    ) -> None:
        self.channel = channel
        self.dropped = 0
        """Droppable messages dropped because the queue was full."""
        self.gaps = 0
        """Times the subscription was re-established (messages may have been missed)."""
        self._mux = mux
        self._codec = codec
        self._size = queue_size
        self._overflow_timeout = overflow_timeout
        self._items: deque[M] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failure: PubSubError | None = None
        self._attached = False

    async def __aenter__(self) -> Subscription[M]:
        self._attached = True
        try:
            await self._mux.attach({self.channel: self}, self)
        except TimeoutError:
            self._stop()
            raise PubSubError(f"could not subscribe to {self.channel!r}") from None
        except BaseException:
            self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Unsubscribe (the channel's last local subscription unsubscribes it on Redis)."""
        self._stop()

    def _stop(self) -> None:
        if self._attached:
            self._attached = False
            self._mux.detach([self.channel], self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __aiter__(self) -> AsyncIterator[M]:
        return self

    async def __anext__(self) -> M:
        while not self._items:
            if self._failure is not None:
                raise self._failure
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._items.popleft()
        if self._timer is not None and len(self._items) <= self._size:
            self._timer.cancel()  # caught up within the overflow timeout
            self._timer = None
        return message

    async def get(self, timeout: float | None = None) -> M:  # noqa: ASYNC109
        """The next message; raises ``TimeoutError`` if none comes within ``timeout`` seconds."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    # --- what the multiplexer calls (Receiver) ---

    def receive(self, payload: bytes) -> None:
        """Queue one frame of the channel (never blocks)."""
        if self._failure is not None:
            return
        message = decode(self._codec, self.channel, payload)
        if message is None:
            return
        if len(self._items) < self._size:
            self._put(message)
        elif payload[0] & DROPPABLE:
            self.dropped += 1
            DROPS.inc()
        elif self._overflow_timeout is None:
            self._put(message)
        elif len(self._items) >= 2 * self._size:
            self._overflowed()
        else:
            self._put(message)
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(
                    self._overflow_timeout, self._overflowed
                )

    def gap(self) -> None:
        """Count a re-subscription."""
        self.gaps += 1

    def fail(self, error: Exception) -> None:
        """End the subscription: the consumer gets ``error`` after the queued messages."""
        if self._failure is None:
            self._failure = PubSubError(f"{self.channel!r}: {error}")
            self._wake()

    def _put(self, message: M) -> None:
        self._items.append(message)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _overflowed(self) -> None:
        self._timer = None
        SLOW_CONSUMERS.inc()
        while len(self._items) > self._size:  # the overflow was never delivered: drop it
            self._items.pop()
        self._failure = SlowConsumerError(
            f"consumer of {self.channel!r} kept a full queue for {self._overflow_timeout}s"
        )
        self._stop()
        self._wake()
