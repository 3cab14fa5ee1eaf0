"""Reference-counted real-time subscriptions: one per channel per gateway process.

Every connection that needs a channel (its user's ``rt:{user:<id>}``, each of its conversations'
``rt:{conv:<id>}``) *acquires* it with itself as listener and *releases* it when done. The first
acquire subscribes the channel on Redis (:meth:`shared.pubsub.PubSub.listen`, multiplexed: one
subscriber connection per cluster primary for all channels); the last release unsubscribes it.
:meth:`ChannelHub.acquire_many` takes a connection's channels in one batch (one write per
primary). Each frame is decoded once (``contracts.realtime.open_frame``) and handed to every
local listener, which must not block (listeners queue what they send, see
:mod:`gateway.handlers.realtime`).

A channel that was re-established (failover, slot move) or failed may have lost frames;
the listeners are told (:meth:`ChannelListener.on_gap`) so they can recover from the history.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Gauge

from contracts import realtime
from contracts.base import ContractError, Envelope, Message
from shared import tracing
from shared.pubsub import PubSub
from shared.tracing import state as tracing_state

log = logging.getLogger(__name__)

CHANNELS = Gauge("parley_gateway_rt_channels", "Real-time channels this gateway is subscribed to")
CONNECTIONS = Gauge(
    "parley_gateway_rt_connections", "Redis subscriber connections carrying the real-time channels"
)


class ChannelListener(Protocol):
    """A local consumer of channel frames (a WebSocket connection)."""

    def on_frame(self, channel: str, envelope: Envelope, message: Message) -> None:
        """A decoded frame of ``channel``; must return quickly and never block."""

    def on_gap(self, channel: str) -> None:
        """Frames of ``channel`` may have been lost."""


class ChannelHub:
    """The channels this process is subscribed to, shared by all local connections."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub
        self._channels: dict[str, set[ChannelListener]] = {}
        CONNECTIONS.set_function(lambda: pubsub.connections)

    def refcount(self, channel: str) -> int:
        """How many local listeners hold ``channel``."""
        return len(self._channels.get(channel, ()))

    def is_live(self, channel: str) -> bool:
        """Whether ``channel`` is subscribed now (frames published from now on arrive)."""
        return channel in self._channels and self._pubsub.is_live(channel)

    @property
    def channels(self) -> frozenset[str]:
        """The channels subscribed (or being subscribed) now."""
        return frozenset(self._channels)

    async def acquire(self, channel: str, listener: ChannelListener) -> None:
        """Add ``listener`` to ``channel``; returns once the channel is subscribed."""
        await self.acquire_many([channel], listener)

    async def acquire_many(self, channels: Iterable[str], listener: ChannelListener) -> None:
        """Add ``listener`` to ``channels``, subscribing the new ones together; returns once all
        are subscribed. Raises :class:`~shared.pubsub.PubSubError` after the pub/sub's
        ``connect_timeout``: the channels stay held, and a gap is reported once they are live."""
        wanted = list(dict.fromkeys(channels))
        for channel in wanted:
            self._channels.setdefault(channel, set()).add(listener)
        CHANNELS.set(len(self._channels))
        waiting = [ch for ch in wanted if not self._pubsub.is_live(ch)]
        if waiting:
            await self._pubsub.listen(waiting, realtime.Frame, self)

    async def release(self, channel: str, listener: ChannelListener) -> None:
        """Remove ``listener``; the last one out unsubscribes."""
        listeners = self._channels.get(channel)
        if listeners is None:
            return
        listeners.discard(listener)
        if listeners:
            return
        del self._channels[channel]
        CHANNELS.set(len(self._channels))
        self._pubsub.unlisten([channel], self)

    async def aclose(self) -> None:
        """Unsubscribe from everything."""
        channels = list(self._channels)
        self._channels.clear()
        CHANNELS.set(0)
        self._pubsub.unlisten(channels, self)

    # --- shared.pubsub.Listener ---

    def on_message(self, channel: str, message: realtime.Frame) -> None:
        """Decode the frame once and hand it to every local listener of ``channel``."""
        try:
            envelope, decoded = realtime.open_frame(message)
        except ContractError as e:
            log.warning("skipping a frame on %s: %s", channel, e)
            return
        listeners = list(self._channels.get(channel, ()))
        if tracing_state.tracer is None:
            self._deliver(listeners, channel, envelope, decoded)
            return
        with tracing.span(
            f"ws deliver {envelope.type}",
            kind="consumer",
            traceparent=envelope.traceparent,
            tracestate=envelope.tracestate,
            attributes={
                "messaging.system": "redis",
                "messaging.operation.type": "process",
                "messaging.destination.name": channel,
                "messaging.message.id": envelope.id,
                "parley.message.type": envelope.type,
                "parley.ws.listeners": len(listeners),
            },
        ):
            self._deliver(listeners, channel, envelope, decoded)

    @staticmethod
    def _deliver(
        listeners: list[ChannelListener], channel: str, envelope: Envelope, decoded: Message
    ) -> None:
        for listener in listeners:
            try:
                listener.on_frame(channel, envelope, decoded)
            except Exception:
                log.exception("a real-time listener failed on %s", channel)

    def on_gap(self, channel: str) -> None:
        """Tell every local listener of ``channel`` that frames may have been lost."""
        for listener in list(self._channels.get(channel, ())):
            try:
                listener.on_gap(channel)
            except Exception:
                log.exception("a real-time listener failed on a gap of %s", channel)

    def on_failure(self, channel: str, error: Exception) -> None:
        """The channel's reader failed; it is subscribed again, so this is a gap."""
        log.error("real-time channel %s failed: %s", channel, error)
        self.on_gap(channel)
