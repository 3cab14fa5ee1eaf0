"""A connection's life: open (subscribe, announce), heartbeat, close; and the registry of them.

Connection facts go to ``gateway.events`` (``ConnectionOpened``/``Heartbeat``/``Closed``) for
the user service's presence. A failure to publish one is logged, never fatal to the connection:
presence is best effort (the heartbeat repairs it, the device TTL ends it).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

from contracts.base import Envelope, Message
from contracts.chat import ConversationIds, ListConversationIds
from contracts.gateway import ConnectionClosed, ConnectionHeartbeat, ConnectionOpened
from gateway.domain import close_codes, errors
from gateway.domain.clock import Clock
from gateway.handlers.backend import BackendError
from gateway.handlers.realtime import Connection
from shared.pubsub import PubSubError

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where connection facts go: :class:`shared.bus.Publisher`."""

    async def publish(self, message: Message, *, envelope: Envelope | None = None) -> str:
        """Append ``message`` to its stream."""


class ConnectionFacts:
    """Publishes one gateway instance's connection facts."""

    def __init__(self, events: EventSink, *, gateway_id: str) -> None:
        self._events = events
        self.gateway_id = gateway_id

    async def publish(self, conn: Connection, kind: type[Message]) -> None:
        """Publish ``kind`` (one of the three connection events) for ``conn``."""
        ident = conn.identity
        assert kind in (ConnectionOpened, ConnectionHeartbeat, ConnectionClosed)
        message = kind(
            user_id=ident.user_id,
            device_id=ident.device_id,
            connection_id=ident.connection_id,
            gateway_id=self.gateway_id,
        )
        try:
            await self._events.publish(message)
        except Exception:
            log.warning("could not publish %s", kind.TYPE, exc_info=True)


async def open_connection(conn: Connection, facts: ConnectionFacts) -> None:
    """Subscribe the user's and their conversations' channels, say ``ready``, announce it."""
    # The personal channel is subscribed while the conversations are listed; then all the
    # conversations' channels in one batch (one write per Redis primary, not one per channel).
    _, conversations = await asyncio.gather(conn.hub_acquire_user(), _conversations(conn))
    try:
        await conn.join_many(conversations)
    except PubSubError as e:
        log.warning("conversation channels of %s not all subscribed yet: %s", conn.user_id, e)
    conn.send(
        {
            "type": "ready",
            "user_id": conn.user_id,
            "session_id": conn.identity.session_id,
            "connection_id": conn.identity.connection_id,
            "conversations": conversations,
            "heartbeat_interval": conn.options.heartbeat_interval,
        }
    )
    await facts.publish(conn, ConnectionOpened)


LIST_RETRIES = (0.2, 1.0)
"""Pauses before asking again for a connecting user's conversations when chat did not answer."""


async def _conversations(conn: Connection) -> list[str]:
    # One request, one query in chat: the ids alone (the summaries of ``ListConversations``
    # cost chat several queries per conversation, and a connect needs none of them).
    command = ListConversationIds(user_id=conn.user_id, limit=conn.options.max_conversations)
    for pause in (*LIST_RETRIES, None):
        try:
            found: ConversationIds = await conn.backend.call(command, conn.context())
        except BackendError as e:
            # A storm of connects (a gateway's restart) can outrun chat for a moment: a socket
            # without its list would hear none of its conversations, so a request that was not
            # answered is asked again, unless a breaker says when to (then, as after the last
            # try, the connection still gets its personal channel and whatever the client
            # resumes, and it is told, so it can resume what it shows).
            if e.code == errors.UNAVAILABLE and e.retry_after is None and pause is not None:
                await asyncio.sleep(pause * random.uniform(0.5, 1.5))
                continue
            conn.send({"type": "error", "code": e.code, "message": "conversations unavailable"})
            return []
        return found.ids[: conn.options.max_conversations]
    return []  # unreachable: the last pass returns


class Heartbeats:
    """Every ``heartbeat_interval`` until stopped: publish a heartbeat, ``renew`` (the
    connection's slot), refresh the viewing.

    An entry on the process's :class:`~gateway.domain.clock.Clock` between beats and a task only
    while one runs: a socket is idle almost all the time, and a sleeping task (or a timer of its
    own) would cost every socket about a kilobyte.
    """

    def __init__(
        self,
        conn: Connection,
        facts: ConnectionFacts,
        clock: Clock,
        renew: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._conn = conn
        self._facts = facts
        self._clock = clock
        self._renew = renew
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        # The first beat at a random point of the interval: the sockets of a reconnect storm
        # would otherwise beat (and renew their slots) in step for as long as they live.
        interval = conn.options.heartbeat_interval
        self._next = clock.call_later(interval * random.uniform(0.5, 1.0), self._due)

    def _due(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        try:
            await self._facts.publish(self._conn, ConnectionHeartbeat)
            if self._renew is not None:
                await self._renew()
            if self._conn.viewing is not None:
                await _tell_viewing(self._conn)
        finally:
            self._task = None
            if not self._stopped:
                interval = self._conn.options.heartbeat_interval
                self._next = self._clock.call_later(interval, self._due)

    async def stop(self) -> None:
        """No further beat; one in progress is cancelled and waited for."""
        self._stopped = True
        self._clock.cancel(self._next)
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def close_connection(conn: Connection, facts: ConnectionFacts) -> None:
    """Release every channel, end what the connection viewed, announce the close."""
    try:
        await conn.release_all()
        if conn.viewing is not None:
            conn.viewing = None
            await _tell_viewing(conn)
    finally:
        await facts.publish(conn, ConnectionClosed)


async def _tell_viewing(conn: Connection) -> None:
    # Best effort, like presence: the mark expires on its own (90 s) if this is lost.
    try:
        await conn.backend.call(conn.viewing_command(), conn.context())
    except BackendError as e:
        log.warning("could not tell notification what %s views: %s", conn.user_id, e.code)


class ConnectionRegistry:
    """The live connections of this instance, by session (to close revoked ones)."""

    def __init__(self) -> None:
        self._by_session: dict[str, set[Connection]] = {}

    def __len__(self) -> int:
        return sum(len(c) for c in self._by_session.values())

    def add(self, conn: Connection) -> None:
        """Register a connection."""
        self._by_session.setdefault(conn.identity.session_id, set()).add(conn)

    def remove(self, conn: Connection) -> None:
        """Forget a connection."""
        conns = self._by_session.get(conn.identity.session_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._by_session[conn.identity.session_id]

    async def on_revoked(self, user_id: str, session_id: str) -> None:
        """The TokenVerifier hook: close the session's connections (4003)."""
        for conn in list(self._by_session.get(session_id, ())):
            conn.close(close_codes.SESSION_REVOKED)

    def close_all(self, code: int = close_codes.GOING_AWAY) -> None:
        """Close every connection (shutdown)."""
        for conns in list(self._by_session.values()):
            for conn in list(conns):
                conn.close(code)
