"""The message base of the fleet: envelope, message kinds, replies and error codes.

Mechanism only: no service or domain words live here.

Shape of a message on the wire
------------------------------
Every message travels as two msgspec Structs side by side:

* an :class:`Envelope` (id, type, version, occurred_at, producer, correlation_id, causation_id,
  traceparent/tracestate, and for commands deadline + reply_to), and
* a payload: an instance of a :class:`Message` subclass (:class:`Event`, :class:`Command`,
  :class:`ChannelMessage`) or a :class:`Reply`.

They are kept apart so that payload schemas stay clean (the committed JSON Schemas describe only the
payload) and so that the bus can route, deduplicate, check deadlines and trace from the envelope
without decoding the payload. ``contracts.codec`` encodes both (MessagePack on the wire, JSON for
tools): in a stream entry as two fields, on a channel as one two-item frame.

Declaring a message
-------------------
Message classes are frozen, keyword-only Structs and declare, as upper-case ClassVars::

    class MessagePosted(Event):
        TYPE = "chat.message_posted"   # "<producer>.<name>", unique across the fleet
        VERSION = 1                    # major version; a breaking change is a new class, VERSION 2
        STREAM = "chat.events"         # logical stream (Event/Command) ...
        KEY = "conversation_id"        # field whose value picks the partition (None: message id)

        conversation_id: Id
        ...

:class:`ChannelMessage` subclasses declare ``CHANNEL`` (a channel family of the registry, e.g.
``"rt.conv"``) instead of ``STREAM``; ``KEY`` names the field that fills the channel's id.
:class:`Command` subclasses also declare ``RESULT`` (the Struct carried by a successful reply) and
``TIMEOUT`` (seconds; the default deadline is ``occurred_at + TIMEOUT``).

A class whose text fields carry secrets (passwords, tokens) names them in ``SECRETS``: they travel
sealed (``sealed1.<base64url>``, see :mod:`shared.transit`), so Redis never holds them in clear;
the schema of such a field bounds the sealed text, not the secret.

Upper-case names keep class settings from colliding with snake_case payload fields; msgspec ignores
ClassVars, so they never reach the wire or the schema.
"""

from __future__ import annotations

import enum
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import msgspec

__all__ = [
    "ChannelMessage",
    "Command",
    "ContractError",
    "DecodeError",
    "Empty",
    "Envelope",
    "ErrorCode",
    "ErrorInfo",
    "Event",
    "Id",
    "Message",
    "Reply",
    "UnknownMessageError",
    "new_message_id",
    "utcnow",
]

# Ids cross every boundary as strings: uuid-like, bounded so a hostile producer cannot bloat them.
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
_Traceparent = Annotated[str, msgspec.Meta(max_length=128)]
_Tracestate = Annotated[str, msgspec.Meta(max_length=512)]
_Producer = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_TypeName = Annotated[str, msgspec.Meta(min_length=3, max_length=128)]
UtcDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class ContractError(Exception):
    """Root of every error raised by the ``contracts`` package."""


class DecodeError(ContractError):
    """Bytes could not be decoded into the expected message: malformed, or a field of a wrong type.

    ``type_name`` is the expected message type (when known); ``reason`` is msgspec's message,
    which names the offending path (e.g. "Expected `str`, got `int` - at `$.body`").
    """

    def __init__(self, reason: str, *, type_name: str | None = None) -> None:
        self.reason = reason
        self.type_name = type_name
        where = f" as {type_name}" if type_name else ""
        super().__init__(f"cannot decode{where}: {reason}")


class UnknownMessageError(ContractError):
    """A (type, version) pair, stream or channel that the registry does not declare."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only kind of datetime on the wire)."""
    return datetime.now(UTC)


def new_message_id() -> str:
    """A fresh UUIDv7 string: unique, and sortable by creation time (useful in traces and logs).

    Python 3.11 has no ``uuid.uuid7``; this follows RFC 9562 (48-bit Unix milliseconds, version 7,
    variant 10, 74 random bits).
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


class Envelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Metadata carried beside every payload; readable without decoding the payload.

    ``type``/``version`` name the payload class in the registry. ``correlation_id`` is shared by
    everything one client request caused; ``causation_id`` is the id of the message whose handler
    produced this one. ``deadline`` and ``reply_to`` are set on commands only.
    """

    id: Id
    type: _TypeName
    version: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    occurred_at: UtcDatetime
    producer: _Producer
    correlation_id: Id | None = None
    causation_id: Id | None = None
    traceparent: _Traceparent | None = None
    tracestate: _Tracestate | None = None
    deadline: UtcDatetime | None = None
    reply_to: Annotated[str, msgspec.Meta(max_length=256)] | None = None

    @classmethod
    def for_message(
        cls,
        message: Message,
        *,
        producer: str,
        caused_by: Envelope | None = None,
        correlation_id: str | None = None,
        deadline: datetime | None = None,
        reply_to: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Envelope:
        """A new envelope for ``message``.

        With ``caused_by`` (the envelope of the message being handled) the correlation id and trace
        context are inherited and the causation id points at it. Without a correlation id, a fresh
        message starts its own chain (correlation id = its own id). A command without an explicit
        deadline gets ``now + TIMEOUT``.
        """
        now = utcnow()
        msg_id = new_message_id()
        if caused_by is not None:
            correlation_id = correlation_id or caused_by.correlation_id or caused_by.id
            traceparent = traceparent or caused_by.traceparent
            tracestate = tracestate or caused_by.tracestate
        if deadline is None and isinstance(message, Command):
            deadline = now + timedelta(seconds=message.TIMEOUT)
        return cls(
            id=msg_id,
            type=message.TYPE,
            version=message.VERSION,
            occurred_at=now,
            producer=producer,
            correlation_id=correlation_id or msg_id,
            causation_id=caused_by.id if caused_by is not None else None,
            traceparent=traceparent,
            tracestate=tracestate,
            deadline=deadline,
            reply_to=reply_to,
        )

    def reply_envelope(self, *, producer: str) -> Envelope:
        """The envelope of the reply to the command this envelope carries (``<TYPE>.reply``)."""
        msg_id = new_message_id()
        return Envelope(
            id=msg_id,
            type=f"{self.type}.reply",
            version=self.version,
            occurred_at=utcnow(),
            producer=producer,
            correlation_id=self.correlation_id or self.id,
            causation_id=self.id,
            traceparent=self.traceparent,
            tracestate=self.tracestate,
        )

    def expired(self, now: datetime | None = None) -> bool:
        """Whether a deadline is set and has passed (an expired command is answered, never run)."""
        return self.deadline is not None and (now or utcnow()) >= self.deadline


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every payload that the registry declares. Subclass a kind, never this directly."""

    KIND: ClassVar[str] = "message"
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    KEY: ClassVar[str | None] = None
    SECRETS: ClassVar[tuple[str, ...]] = ()

    def partition_value(self) -> str | None:
        """The value of the ``KEY`` field as a string, or None when the class has no key."""
        if self.KEY is None:
            return None
        return str(getattr(self, self.KEY))


class Event(Message, frozen=True, kw_only=True):
    """A fact in the past tense, appended to its owner's ``<service>.events`` stream."""

    KIND: ClassVar[str] = "event"
    STREAM: ClassVar[str]


class Empty(msgspec.Struct, frozen=True, kw_only=True):
    """The result of a command that returns nothing but success."""


class Command(Message, frozen=True, kw_only=True):
    """A request that exactly one instance of the owning service executes, then answers."""

    KIND: ClassVar[str] = "command"
    STREAM: ClassVar[str]
    RESULT: ClassVar[type[msgspec.Struct]] = Empty
    TIMEOUT: ClassVar[float] = 5.0

    @classmethod
    def reply_type(cls) -> Any:
        """``Reply[RESULT]``: the concrete type to decode this command's reply with."""
        return Reply[cls.RESULT]  # type: ignore[name-defined]

    @classmethod
    def reply_type_name(cls) -> str:
        """The type name of this command's reply: ``<TYPE>.reply``."""
        return f"{cls.TYPE}.reply"


class ChannelMessage(Message, frozen=True, kw_only=True):
    """An ephemeral payload on a pub/sub channel family (may be dropped; never in a stream)."""

    KIND: ClassVar[str] = "channel"
    CHANNEL: ClassVar[str]


class ErrorCode(enum.StrEnum):
    """Stable error codes carried by failed replies (and mapped to HTTP statuses by the gateway).

    Adding a code is allowed; removing or renaming one is a breaking change.
    """

    INVALID = "invalid"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    UNAUTHENTICATED = "unauthenticated"
    EXPIRED = "expired"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Why a command failed: a stable ``code``, a human ``message``, optional extras."""

    code: ErrorCode
    message: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    retry_after: Annotated[float, msgspec.Meta(ge=0)] | None = None
    field: Annotated[str, msgspec.Meta(max_length=128)] | None = None


ResultT = TypeVar("ResultT")


class Reply(msgspec.Struct, Generic[ResultT], frozen=True, kw_only=True, omit_defaults=True):
    """The answer to a command: ``ok`` with a ``result``, or not ``ok`` with an ``error``.

    Build with :meth:`success` / :meth:`failure`; decode with ``Command.reply_type()``.
    """

    ok: bool
    result: ResultT | None = None
    error: ErrorInfo | None = None

    @classmethod
    def success(cls, result: ResultT) -> Reply[ResultT]:
        """A successful reply carrying ``result``."""
        return Reply(ok=True, result=result)

    @classmethod
    def failure(
        cls,
        code: ErrorCode,
        message: str = "",
        *,
        retry_after: float | None = None,
        field: str | None = None,
    ) -> Reply[Any]:
        """A failed reply with a stable ``code`` (message is truncated to its 1000-char bound)."""
        error = ErrorInfo(code=code, message=message[:1000], retry_after=retry_after, field=field)
        return Reply(ok=False, error=error)
