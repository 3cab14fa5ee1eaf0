"""Reference-counted real-time subscriptions: one per channel per gateway process.

Every connection that needs a channel (its user's ``rt:{user:<id>}``, each of its conversations'
``rt:{conv:<id>}``) *acquires* it with itself as listener and *releases* it when done. The first
acquire opens the :class:`shared.pubsub.Subscription`; the last release closes it. Each frame is
decoded once (``contracts.realtime.open_frame``) and handed to every local listener, which must
not block (listeners queue what they send, see :mod:`gateway.handlers.realtime`).

A subscription that was re-established (failover, slot move) or failed may have lost frames;
the listeners are told (:meth:`ChannelListener.on_gap`) so they can recover from the history.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from prometheus_client import Gauge

from contracts import realtime
from contracts.base import ContractError, Envelope, Message
from shared.pubsub import PubSub, PubSubError

log = logging.getLogger(__name__)

CHANNELS = Gauge("parley_gateway_rt_channels", "Real-time channels this gateway is subscribed to")


class ChannelListener(Protocol):
    """A local consumer of channel frames (a WebSocket connection)."""

    def on_frame(self, channel: str, envelope: Envelope, message: Message) -> None:
        """A decoded frame of ``channel``; must return quickly and never block."""

    def on_gap(self, channel: str) -> None:
        """Frames of ``channel`` may have been lost."""


class _Channel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.listeners: set[ChannelListener] = set()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None


class ChannelHub:
    """The channels this process is subscribed to, shared by all local connections."""

    def __init__(
        self,
        pubsub: PubSub,
        *,
        queue_size: int = 4096,
        retry_delay: float = 0.2,
        stop_timeout: float = 2.0,
    ) -> None:
        self._pubsub = pubsub
        self._stop_timeout = stop_timeout
        self._queue_size = queue_size
        self._retry_delay = retry_delay
        self._channels: dict[str, _Channel] = {}

    def refcount(self, channel: str) -> int:
        """How many local listeners hold ``channel``."""
        entry = self._channels.get(channel)
        return len(entry.listeners) if entry else 0

    def is_live(self, channel: str) -> bool:
        """Whether ``channel`` is subscribed now (frames published from now on arrive)."""
        entry = self._channels.get(channel)
        return entry is not None and entry.ready.done() and not entry.ready.exception()

    @property
    def channels(self) -> frozenset[str]:
        """The channels subscribed (or being subscribed) now."""
        return frozenset(self._channels)

    async def acquire(self, channel: str, listener: ChannelListener) -> None:
        """Add ``listener`` to ``channel``; returns once the channel is subscribed."""
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = _Channel(channel)
            entry.task = asyncio.create_task(self._run(entry), name=f"rt:{channel}")
            CHANNELS.set(len(self._channels))
        entry.listeners.add(listener)
        try:
            await asyncio.wait_for(asyncio.shield(entry.ready), self._pubsub.connect_timeout)
        except TimeoutError:
            # Stays registered: the channel keeps retrying and reports a gap once it is live.
            raise PubSubError(f"could not subscribe to {channel!r} yet") from None

    async def release(self, channel: str, listener: ChannelListener) -> None:
        """Remove ``listener``; the last one out unsubscribes."""
        entry = self._channels.get(channel)
        if entry is None:
            return
        entry.listeners.discard(listener)
        if entry.listeners:
            return
        del self._channels[channel]
        CHANNELS.set(len(self._channels))
        await self._stop(entry)

    async def aclose(self) -> None:
        """Unsubscribe from everything."""
        entries = list(self._channels.values())
        self._channels.clear()
        CHANNELS.set(0)
        for entry in entries:
            await self._stop(entry)

    async def _stop(self, entry: _Channel) -> None:
        if entry.task is not None:
            entry.task.cancel()
            # Bounded: a cancellation swallowed inside the Redis client must not hang the
            # disconnect of the connection releasing the channel (the task is cancelled anyway).
            await asyncio.wait({entry.task}, timeout=self._stop_timeout)
        if not entry.ready.done():
            entry.ready.set_exception(PubSubError(f"{entry.name} was released"))
            entry.ready.exception()  # retrieved: nobody may be waiting any more

    async def _run(self, entry: _Channel) -> None:
        while True:
            try:
                await self._pump(entry)
            except (PubSubError, OSError) as e:
                log.warning("real-time channel %s failed (%s); resubscribing", entry.name, e)
            await asyncio.sleep(self._retry_delay)

    async def _pump(self, entry: _Channel) -> None:
        was_live = entry.ready.done()
        async with self._pubsub.subscribe(
            entry.name, realtime.Frame, queue_size=self._queue_size
        ) as sub:
            if not was_live:
                entry.ready.set_result(None)
            else:
                self._gap(entry)  # frames sent while we were away are lost
            gaps = sub.gaps
            me = asyncio.current_task()
            while True:
                try:
                    frame = await sub.get(timeout=1.0)
                except TimeoutError:
                    frame = None
                if me is not None and me.cancelling():
                    # Python 3.11's wait_for loses a cancellation that lands as a frame arrives.
                    raise asyncio.CancelledError
                if sub.gaps != gaps:
                    gaps = sub.gaps
                    self._gap(entry)
                if frame is not None:
                    self._dispatch(entry, frame)

    def _dispatch(self, entry: _Channel, frame: realtime.Frame) -> None:
        try:
            envelope, message = realtime.open_frame(frame)
        except ContractError as e:
            log.warning("skipping a frame on %s: %s", entry.name, e)
            return
        for listener in list(entry.listeners):
            try:
                listener.on_frame(entry.name, envelope, message)
            except Exception:
                log.exception("a real-time listener failed on %s", entry.name)

    def _gap(self, entry: _Channel) -> None:
        for listener in list(entry.listeners):
            try:
                listener.on_gap(entry.name)
            except Exception:
                log.exception("a real-time listener failed on a gap of %s", entry.name)
