"""One subscriber connection to one node, carrying many channels (see :mod:`shared.pubsub`).

A :class:`Link` owns a dedicated connection and two tasks. The *writer* sends the subscribes and
unsubscribes queued since it last ran in one socket write: one ``SSUBSCRIBE`` per hash slot (a
command may only name channels of one slot), ``SUBSCRIBE`` in chunks on a single node. The
*reader* reads every push and hands it to the :class:`LinkOwner` without ever waiting on a
consumer, so one slow channel cannot stall the others. Replies come back in the order the
commands were sent; the link keeps that order (``_expected``) to know which command an error
(``MOVED`` for a channel whose slot moved) belongs to, and to tell the confirmation of our own
unsubscribe from the unsolicited one Redis sends when a slot leaves the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from redis.asyncio import RedisCluster
from redis.exceptions import RedisClusterException, RedisError, ResponseError

log = logging.getLogger(__name__)

LOST: Final = (RedisError, RedisClusterException, OSError, TimeoutError)
"""What ends a link (RedisClusterException is not a RedisError: redis-py raises it when no node
answers a cluster-map refresh, i.e. the whole cluster is away)."""

_CHUNK: Final = 500  # channels per SUBSCRIBE on a single node: bounds one command's size
_MESSAGES: Final = (b"smessage", b"message")
_SUBSCRIBED: Final = (b"ssubscribe", b"subscribe")
_UNSUBSCRIBED: Final = (b"sunsubscribe", b"unsubscribe")


class LinkOwner(Protocol):
    """What a link reports to (the multiplexer)."""

    def delivered(self, channel: bytes, payload: bytes) -> None:
        """A message arrived on ``channel``; must not block."""

    def confirmed(self, link: Link, channel: bytes) -> None:
        """``channel`` is subscribed on ``link``."""

    def evicted(self, link: Link, channels: list[bytes]) -> None:
        """``channels`` are no longer subscribed on ``link`` (slot moved, command refused)."""

    def ended(self, link: Link, error: BaseException | None) -> None:
        """The link's connection is gone; ``error`` is set when that was a bug, not a loss."""


@dataclass
class _Expected:
    """The replies still due for one command sent, in order."""

    kind: bytes  # b"subscribe" or b"unsubscribe" (without the sharded "s")
    channels: deque[bytes] = field(default_factory=deque)


class Link:
    """A subscriber connection to ``node`` (``None``: the single node) shared by many channels."""

    def __init__(self, owner: LinkOwner, node: str | None, conn: Any, *, sharded: bool) -> None:
        self.node = node
        self.channels: set[bytes] = set()
        """Channels routed to this link: subscribed, or being subscribed."""
        self._owner = owner
        self._conn = conn
        self._sharded = sharded
        self._expected: deque[_Expected] = deque()
        self._queued: list[tuple[bytes, int, bytes]] = []  # (verb, slot, channel), in order
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: asyncio.Task[None] | None = None  # referenced: not collected mid-way

    @classmethod
    async def open(
        cls,
        owner: LinkOwner,
        client: Any,
        node: Any,
        *,
        name: str,
        timeout: float,  # noqa: ASYNC109 - a connect bound
    ) -> Link:
        """Connect to ``node`` (a ClusterNode, or ``None`` for the single node of ``client``)."""
        if node is not None:
            conn = node.connection_class(**{**node.connection_kwargs, "client_name": name})
        else:
            pool = client.connection_pool
            conn = pool.connection_class(**{**pool.connection_kwargs, "client_name": name})
        async with asyncio.timeout(timeout):
            await conn.connect()
        return cls(owner, None if node is None else node.name, conn, sharded=node is not None)

    def start(self, health_interval: float) -> None:
        """Start the reader and the writer."""
        name = self.node or "single"
        self._tasks = [
            asyncio.create_task(self._read(health_interval), name=f"pubsub-read:{name}"),
            asyncio.create_task(self._write(), name=f"pubsub-write:{name}"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)

    def subscribe(self, channel: bytes, slot: int) -> None:
        """Route ``channel`` here; it is subscribed with the next write."""
        self.channels.add(channel)
        self._queued.append((b"SUBSCRIBE", slot, channel))
        self._wake.set()

    def unsubscribe(self, channel: bytes, slot: int) -> None:
        """Stop routing ``channel`` here; it is unsubscribed with the next write."""
        self.channels.discard(channel)
        self._queued.append((b"UNSUBSCRIBE", slot, channel))
        self._wake.set()

    async def aclose(self) -> None:
        """Stop both tasks and close the connection (nothing is reported to the owner)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.remove_done_callback(self._task_ended)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._conn.disconnect()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if not self._tasks:
            return  # already ending
        error = None if task.cancelled() else task.exception()
        for other in self._tasks:
            other.cancel()
        self._tasks = []
        self._closing = asyncio.get_running_loop().create_task(self._conn.disconnect())
        bug = None if error is None or isinstance(error, LOST) else error
        if error is not None:
            log.info("pub/sub connection to %s lost: %r", self.node or "redis", error)
        self._owner.ended(self, bug)

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            queued, self._queued = self._queued, []
            commands = self._commands(queued)
            if commands:
                await self._conn.send_packed_command(
                    self._conn.pack_commands(commands), check_health=False
                )

    def _commands(self, queued: list[tuple[bytes, int, bytes]]) -> list[tuple[bytes, ...]]:
        """The commands for ``queued``, noting the replies due: each run of one verb becomes one
        command per slot (a subscribe after an unsubscribe of the same channel stays after it)."""
        prefix = b"S" if self._sharded else b""
        commands: list[tuple[bytes, ...]] = []
        start = 0
        while start < len(queued):
            verb = queued[start][0]
            end = start
            by_slot: dict[int, list[bytes]] = {}
            while end < len(queued) and queued[end][0] == verb:
                by_slot.setdefault(queued[end][1], []).append(queued[end][2])
                end += 1
            for names in by_slot.values():
                for first in range(0, len(names), _CHUNK):
                    chunk = names[first : first + _CHUNK]
                    commands.append((prefix + verb, *chunk))
                    self._expected.append(_Expected(verb.lower(), deque(chunk)))
            start = end
        return commands

    async def _read(self, health_interval: float) -> None:
        awaiting_pong = False
        while True:
            try:
                reply = await self._conn.read_response(
                    timeout=health_interval, push_request=True, disable_decoding=True
                )
            except ResponseError as e:  # an error reply to a command (MOVED...), not a loss
                self._refused(e)
                continue
            if reply is None:  # idle for a whole interval
                if awaiting_pong:
                    raise TimeoutError("no PONG from the pub/sub connection")
                await self._conn.send_command("PING", check_health=False)
                awaiting_pong = True
                continue
            awaiting_pong = False  # anything at all shows the peer is alive
            if isinstance(reply, list) and len(reply) >= 3:
                self._push(reply[0], reply[1], reply[2])

    def _push(self, kind: bytes, channel: bytes, payload: Any) -> None:
        if kind in _MESSAGES:
            self._owner.delivered(channel, payload)
        elif kind in _SUBSCRIBED:
            self._answered(b"subscribe", channel)
            self._owner.confirmed(self, channel)
        elif kind in _UNSUBSCRIBED and not self._answered(b"unsubscribe", channel):
            # Not ours: Redis dropped the channel because its slot left this node.
            self._owner.evicted(self, [channel])

    def _answered(self, kind: bytes, channel: bytes) -> bool:
        """Whether this reply is the one due next for a command we sent (then it is consumed)."""
        if not self._expected:
            return False
        head = self._expected[0]
        if head.kind != kind or not head.channels or head.channels[0] != channel:
            return False
        head.channels.popleft()
        if not head.channels:
            self._expected.popleft()
        return True

    def _refused(self, error: ResponseError) -> None:
        if not self._expected:
            log.warning("unexpected error on the pub/sub connection to %s: %s", self.node, error)
            return
        head = self._expected.popleft()
        log.info(
            "pub/sub %s of %d channel(s) refused: %s", head.kind.decode(), len(head.channels), error
        )
        if head.kind == b"subscribe":
            self._owner.evicted(self, list(head.channels))


def slot_of(client: Any, channel: bytes) -> int:
    """The hash slot of ``channel`` on a cluster client (0 on a single node)."""
    return int(client.keyslot(channel)) if isinstance(client, RedisCluster) else 0
