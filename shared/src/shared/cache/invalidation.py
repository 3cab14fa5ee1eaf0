"""Invalidation messages that keep near-caches coherent across the instances of a service.

One :class:`InvalidationBus` per process and service: caches publish what they invalidate
(keys, or a new namespace generation) on the service's channel, and every other instance
evicts those keys from its near-cache or adopts the generation. If the subscription had a gap
(reconnect, failover), messages may have been lost, so every near-cache is cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

import msgspec

from shared.keys import KeySpace
from shared.pubsub import PubSub, Subscription

log = logging.getLogger(__name__)


class Invalidation(msgspec.Struct, frozen=True):
    """Keys (full Redis keys) to evict, or a namespace's new generation."""

    origin: str
    namespace: str
    keys: list[str] = []
    generation: int | None = None


Listener = Callable[[Invalidation | None], None]
"""Called with each message from a peer, or with ``None`` after a gap (clear everything)."""


class InvalidationBus:
    """Publish and receive cache invalidations on ``<prefix>:cache:{invalidations}``."""

    def __init__(self, pubsub: PubSub, keyspace: KeySpace) -> None:
        self.origin = uuid.uuid4().hex
        self.channel = keyspace.key("cache", tag="invalidations")
        self._pubsub = pubsub
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._sub: Subscription[Invalidation] | None = None

    def listen(self, listener: Listener) -> None:
        """Register a cache's handler; it sees every namespace's messages (tags cross them)."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Subscribe; returns once invalidations from peers are being received."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"cache-bus:{self.channel}")
            waiter = asyncio.ensure_future(self._started.wait())
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
            if self._task.done():
                waiter.cancel()
                await self._task  # surfaces the subscription error

    async def aclose(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def publish(self, namespace: str, *, keys: list[str], generation: int | None) -> None:
        """Tell this process's caches, then the peers.

        A failure to publish only costs coherence until the near TTL, so it is logged.
        """
        message = Invalidation(self.origin, namespace, keys, generation)
        self._dispatch(message)
        try:
            await self._pubsub.publish(self.channel, message)
        except Exception as e:
            log.warning("cache invalidation not published on %s: %s", self.channel, e)

    async def _run(self) -> None:
        async with self._pubsub.subscribe(self.channel, Invalidation) as sub:
            self._started.set()
            gaps = sub.gaps
            while True:
                with contextlib.suppress(TimeoutError):
                    message = await sub.get(timeout=1.0)
                    if message.origin != self.origin:
                        self._dispatch(message)
                if sub.gaps != gaps:
                    gaps = sub.gaps
                    self._dispatch(None)

    def _dispatch(self, message: Invalidation | None) -> None:
        for listener in self._listeners:
            try:
                listener(message)
            except Exception:
                log.exception("cache invalidation listener failed")
