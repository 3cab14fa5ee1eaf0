"""Many channels over one subscriber connection per node (see :mod:`shared.pubsub`).

The :class:`Multiplexer` keeps, per channel, the local receivers and the link it is routed to.
A channel without a link is *homeless*: the placer task routes every homeless channel to the
link of the primary owning its slot (connecting it if needed), refreshing the cluster map first
when a loss suggested it moved, and backing off with jitter while that fails. A link that ends
makes all its channels homeless; an unsolicited unsubscribe or a refused subscribe (``MOVED``)
makes only the channels concerned homeless. A channel that becomes live again after a loss
reports a gap to its receivers, and only it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Counter, Gauge
from redis.asyncio import RedisCluster

from shared.pubsub.link import LOST, Link, slot_of

log = logging.getLogger(__name__)

CONNECTIONS = Gauge("parley_pubsub_connections", "Pub/sub subscriber connections open")
RESUBSCRIPTIONS = Counter(
    "parley_pubsub_resubscriptions_total", "Pub/sub channels re-established after a loss"
)


class Receiver(Protocol):
    """A local consumer of one channel's raw frames."""

    def receive(self, payload: bytes) -> None:
        """A frame of the channel; must return quickly and never block."""

    def gap(self) -> None:
        """The channel was re-established: frames may have been lost."""

    def fail(self, error: Exception) -> None:
        """The channel cannot be delivered any more (a bug in the reader)."""


@dataclass(eq=False, slots=True)
class _Channel:
    name: bytes
    slot: int
    receivers: dict[object, Receiver] = field(default_factory=dict)
    link: Link | None = None
    live: bool = False
    owes_gap: bool = False  # was live (or a waiter gave up): its next confirmation is a gap
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class Multiplexer:
    """The subscriber connections of one :class:`~shared.pubsub.PubSub` and their channels."""

    def __init__(
        self, client: Any, *, name: str, health_interval: float, connect_timeout: float
    ) -> None:
        self._client = client
        self._name = name
        self._health_interval = health_interval
        self._connect_timeout = connect_timeout
        self._channels: dict[bytes, _Channel] = {}
        self._links: dict[str | None, Link] = {}
        self._homeless: set[bytes] = set()
        self._stale_map = False
        self._wake = asyncio.Event()
        self._placer: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def connections(self) -> int:
        """Subscriber connections open now."""
        return len(self._links)

    def is_live(self, channel: str) -> bool:
        """Whether ``channel`` is subscribed on Redis now."""
        entry = self._channels.get(channel.encode())
        return entry is not None and entry.live

    async def attach(self, receivers: Mapping[str, Receiver], key: object) -> None:
        """Add each channel's receiver (known by ``key``); returns once all are live.

        All new channels are subscribed together (one write per node). Raises TimeoutError
        after ``connect_timeout``: the receiver stays attached and gets a gap when they go live.
        """
        waiting: dict[asyncio.Future[None], _Channel] = {}
        loop = asyncio.get_running_loop()
        for channel, receiver in receivers.items():
            name = channel.encode()
            entry = self._channels.get(name)
            if entry is None:
                entry = self._channels[name] = _Channel(name, slot_of(self._client, name))
                self._make_homeless(entry)
            entry.receivers[key] = receiver
            if not entry.live:
                future = loop.create_future()
                entry.waiters.append(future)
                waiting[future] = entry
        if not waiting:
            return
        _, pending = await asyncio.wait(waiting, timeout=self._connect_timeout)
        if pending:
            for future in pending:
                waiting[future].owes_gap = True  # the caller was told it is not live yet
                future.cancel()
            raise TimeoutError(f"{len(pending)} channel(s) not subscribed yet")

    def detach(self, channels: Iterable[str], key: object) -> None:
        """Remove the receiver known by ``key``; a channel's last receiver unsubscribes it."""
        for channel in channels:
            name = channel.encode()
            entry = self._channels.get(name)
            if entry is None or entry.receivers.pop(key, None) is None or entry.receivers:
                continue
            del self._channels[name]
            self._homeless.discard(name)
            for future in entry.waiters:
                future.cancel()
            if entry.link is not None:
                entry.link.unsubscribe(name, entry.slot)
        if not self._channels and (self._links or self._placer is not None):
            # Nothing left to listen to: free the connections (the next attach reopens them).
            task = asyncio.get_running_loop().create_task(self._close_idle())
            self._closing.add(task)  # a task nobody references may be collected mid-way
            task.add_done_callback(self._closing.discard)

    async def _close_idle(self) -> None:
        if self._channels:
            return  # attached again meanwhile
        if self._placer is not None:
            self._placer.cancel()
            self._placer = None
        links, self._links = list(self._links.values()), {}
        CONNECTIONS.dec(len(links))
        for link in links:
            await link.aclose()

    # --- what the links report (LinkOwner) ---

    def delivered(self, channel: bytes, payload: bytes) -> None:
        entry = self._channels.get(channel)
        if entry is None:
            return  # released while the unsubscribe was in flight
        for receiver in list(entry.receivers.values()):
            receiver.receive(payload)

    def confirmed(self, link: Link, channel: bytes) -> None:
        entry = self._channels.get(channel)
        if entry is None or entry.link is not link or entry.live:
            return
        entry.live = True
        for future in entry.waiters:
            if not future.done():
                future.set_result(None)
        entry.waiters.clear()
        if entry.owes_gap:
            RESUBSCRIPTIONS.inc()
            for receiver in list(entry.receivers.values()):
                receiver.gap()
        entry.owes_gap = True  # from now on, any re-subscription is a gap

    def evicted(self, link: Link, channels: list[bytes]) -> None:
        for name in channels:
            entry = self._channels.get(name)
            if entry is not None and entry.link is link:
                link.channels.discard(name)
                log.info("pub/sub channel %r left %s; following it", name, link.node)
                self._make_homeless(entry, stale_map=True)

    def ended(self, link: Link, error: BaseException | None) -> None:
        if self._links.get(link.node) is link:
            del self._links[link.node]
            CONNECTIONS.dec()
        for name in link.channels:
            entry = self._channels.get(name)
            if entry is None or entry.link is not link:
                continue
            if error is not None:
                failure = RuntimeError(f"the pub/sub reader failed: {error!r}")
                for receiver in list(entry.receivers.values()):
                    receiver.fail(failure)
            self._make_homeless(entry, stale_map=True)

    # --- placing homeless channels ---

    def _make_homeless(self, entry: _Channel, *, stale_map: bool = False) -> None:
        entry.link, entry.live = None, False
        self._homeless.add(entry.name)
        self._stale_map = self._stale_map or stale_map
        self._wake.set()
        if self._placer is None or self._placer.done():
            self._placer = asyncio.get_running_loop().create_task(self._place_forever())

    async def _place_forever(self) -> None:
        attempt = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._place()
                attempt = 0
            except Exception as e:
                attempt += 1
                if isinstance(e, LOST):
                    log.info("pub/sub cannot place %d channel(s) yet: %r", len(self._homeless), e)
                else:
                    log.exception("pub/sub failed to place %d channel(s)", len(self._homeless))
                self._stale_map = True
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
                self._wake.set()

    async def _place(self) -> None:
        """Route every homeless channel to its owner's link; raises the first failure after
        placing all it could (a slot not covered or a node not answering holds back only
        the channels concerned: each node's link is opened and used on its own)."""
        if self._stale_map and isinstance(self._client, RedisCluster):
            await self._client.nodes_manager.initialize()
        self._stale_map = False
        by_node: dict[str | None, tuple[Any, list[_Channel]]] = {}
        failures: list[BaseException] = []
        for name in list(self._homeless):
            entry = self._channels[name]
            try:
                node = self._node_of(entry)
            except LOST as e:  # the slot is not covered (mid-failover): retried later
                failures.append(e)
                continue
            by_node.setdefault(None if node is None else node.name, (node, []))[1].append(entry)
        results = await asyncio.gather(
            *(self._place_on(node, entries) for node, entries in by_node.values()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Exception):
                failures.append(result)
            elif isinstance(result, BaseException):
                raise result
        if failures:
            raise failures[0]

    async def _place_on(self, node: Any, entries: list[_Channel]) -> None:
        link = await self._link(node)
        for entry in entries:
            if entry.name in self._homeless and self._channels.get(entry.name) is entry:
                self._homeless.discard(entry.name)
                entry.link = link
                link.subscribe(entry.name, entry.slot)

    def _node_of(self, entry: _Channel) -> Any:
        if not isinstance(self._client, RedisCluster):
            return None
        return self._client.nodes_manager.get_node_from_slot(entry.slot)

    async def _link(self, node: Any) -> Link:
        name = None if node is None else node.name
        link = self._links.get(name)
        if link is None:
            link = await Link.open(
                self, self._client, node, name=self._name, timeout=self._connect_timeout
            )
            if (raced := self._links.get(name)) is not None:  # another round connected first
                with contextlib.suppress(Exception):
                    await link.aclose()
                return raced
            self._links[name] = link
            CONNECTIONS.inc()
            link.start(self._health_interval)
        return link
