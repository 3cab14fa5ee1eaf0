"""Request/reply over the bus: commands go through their stream, replies come back on pub/sub.

Each instance listens on its own sharded reply channel ``reply:{<service>.<instance id>}``
(declared in the registry; the service name lets the ACLs give each caller only its own reply
channels) through :class:`shared.pubsub.PubSub`, which follows the channel's slot across failovers.
:meth:`Requester.request` stamps the command with ``reply_to`` and a deadline, publishes it, and
waits for the reply whose causation id is the command's id. Replies are at-most-once (pub/sub):
a reply lost in a failover surfaces as :class:`~shared.bus.errors.RequestTimeoutError`.

Each target (a service's commands stream) has a circuit breaker: requests that go unanswered or
cannot be sent open it, and while it is open :meth:`Requester.request` raises
:class:`~shared.bus.errors.TargetCircuitOpen` at once instead of waiting out the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import msgspec
from redis.exceptions import RedisError

from contracts import codec, registry
from contracts.base import Command, Envelope, Reply, utcnow
from shared import tracing
from shared.breaker import CLOSED, Breakers, BreakerSettings, CircuitOpenError
from shared.bus.errors import RequestTimeoutError, TargetCircuitOpen
from shared.bus.publisher import Publisher
from shared.pubsub import PubSub, Subscription
from shared.redis.client import AnyRedis

log = logging.getLogger(__name__)

_REPLY = {"db.system.name": "redis", "db.operation.name": "PUBLISH", "parley.channel": "reply"}


class ReplyFrame(msgspec.Struct, array_like=True, frozen=True):
    """What travels on a reply channel: the reply's envelope and its still-encoded payload."""

    envelope: Envelope
    payload: msgspec.Raw


def reply_channel(service: str, instance_id: str) -> str:
    """The reply channel of one instance of ``service`` (the registry's ``reply`` family)."""
    return registry.channel("reply").service_key(service, instance_id)


class ReplySender:
    """Answers commands on the caller's reply channel."""

    def __init__(self, client: AnyRedis, *, producer: str) -> None:
        self._pubsub = PubSub(client)
        self.producer = producer

    async def send(self, command: Envelope, reply: Reply[Any]) -> None:
        """Publish ``reply`` to the command's ``reply_to`` (nothing to do when it has none)."""
        await self.send_encoded(command, codec.encode(reply))

    async def send_encoded(self, command: Envelope, reply: bytes) -> None:
        """Publish an already encoded reply (a kept one, for a duplicate command)."""
        if not command.reply_to:
            return
        frame = ReplyFrame(command.reply_envelope(producer=self.producer), msgspec.Raw(reply))
        try:
            with tracing.span("PUBLISH reply", kind="client", child_only=True, attributes=_REPLY):
                await self._pubsub.publish(command.reply_to, frame)
        except Exception:
            # The command's effect stands; the caller will time out and may ask again.
            log.exception("could not send the reply to %s", command.id)


class Requester:
    """Sends commands and awaits their typed replies; one per instance, used as ``async with``."""

    def __init__(
        self,
        client: AnyRedis,
        publisher: Publisher,
        *,
        instance_id: str,
        pubsub: PubSub | None = None,
        breaker: BreakerSettings | None = None,
    ) -> None:
        self.breakers = Breakers("command", breaker)
        """One breaker per target commands stream (``command:chat.commands``...)."""
        self.pubsub = pubsub or PubSub(client)
        """Where the reply channel is subscribed: pass the process's own to share its
        subscriber connections (they are multiplexed, one per primary)."""
        self._pubsub = self.pubsub
        self._publisher = publisher
        self.channel = reply_channel(publisher.producer, instance_id)
        self._waiting: dict[str, asyncio.Future[ReplyFrame]] = {}
        self._subscription: Subscription[ReplyFrame] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Requester:
        self._subscription = await self._pubsub.subscribe(self.channel, ReplyFrame).__aenter__()
        self._reader = asyncio.create_task(self._read(self._subscription))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._subscription is not None:
            await self._subscription.aclose()

    async def request(
        self,
        command: Command,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - it is also the command's deadline
    ) -> Reply[Any]:
        """Send ``command`` and return its reply (``ok`` or an error with a stable code).

        The command's deadline is now + ``timeout`` (default: the command class's ``TIMEOUT``);
        raises RequestTimeoutError when no reply arrives by then, and TargetCircuitOpen without
        sending while the target's breaker is open.
        """
        if self._subscription is None:
            raise RuntimeError("use the Requester as 'async with' before requesting")
        breaker = self.breakers.get(command.STREAM)
        if breaker.state is not CLOSED and not breaker.allow():
            raise TargetCircuitOpen(breaker.name, breaker.retry_after())
        wait = command.TIMEOUT if timeout is None else timeout
        deadline = utcnow() + timedelta(seconds=wait)
        future: asyncio.Future[ReplyFrame] = asyncio.get_running_loop().create_future()
        envelope = self._publisher.envelope_for(command, deadline=deadline, reply_to=self.channel)
        self._waiting[envelope.id] = future
        try:
            await self._publisher.publish(command, envelope=envelope)
            frame = await asyncio.wait_for(future, wait)
        except TimeoutError:
            breaker.record_failure()
            raise RequestTimeoutError(command.TYPE, envelope.id, wait) from None
        except CircuitOpenError:
            raise  # Redis refused without trying: no news about the target
        except (RedisError, OSError):
            breaker.record_failure()
            raise
        finally:
            self._waiting.pop(envelope.id, None)
        breaker.record_success()
        result: Reply[Any] = codec.decode(type(command).reply_type(), frame.payload)
        return result

    async def _read(self, subscription: Subscription[ReplyFrame]) -> None:
        async for frame in subscription:
            future = self._waiting.get(frame.envelope.causation_id or "")
            if future is None or future.done():
                continue  # a late reply to a request that already timed out
            future.set_result(frame)
