"""The fleet's single declaration of streams, consumer groups, channel families and messages.

Everything here is declared once and checked at import time (every message names a declared
stream or channel owned by its producer, its ``KEY`` is one of its fields, no (type, version) is
declared twice). Message classes are collected from the per-service modules, so adding a message
means writing its class there; nothing else needs listing.

Lookups::

    registry.stream("chat.events").key_for(conversation_id)   # Redis key of the right partition
    registry.message_class("chat.message_posted", 1)          # -> MessagePosted
    registry.channel("rt.conv").key(conversation_id)           # "rt:{conv:<id>}"
    registry.groups_reading("chat.events")                     # who consumes it
"""

from __future__ import annotations

from types import ModuleType

from contracts import auth, chat, gateway, notification, user
from contracts.base import (
    ChannelMessage,
    Command,
    ContractError,
    Event,
    Message,
    UnknownMessageError,
)
from contracts.topology import ChannelSpec, GroupSpec, StreamSpec

__all__ = [
    "CHANNELS",
    "GROUPS",
    "MESSAGES",
    "SERVICES",
    "STREAMS",
    "channel",
    "group",
    "groups_reading",
    "message_class",
    "stream",
    "stream_of",
]

SERVICES = ("auth", "user", "chat", "notification", "gateway")

_DAY = 86_400
_WEEK = 7 * _DAY

# Who sends commands to the other services (and so listens on reply channels): the gateway only.
_CALLERS = ("gateway",)

# Commands are short-lived (deadlines are seconds), so their streams keep little; events are kept
# long enough for a consumer down for a day to catch up and for operators to replay.
STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec(
        name="auth.commands", owner="auth", partitions=8, max_len=100_000, max_age_s=_DAY,
        senders=_CALLERS,
    ),
    StreamSpec(name="auth.events", owner="auth", partitions=8, max_len=1_000_000, max_age_s=_WEEK),
    StreamSpec(
        name="user.commands", owner="user", partitions=8, max_len=100_000, max_age_s=_DAY,
        senders=_CALLERS,
    ),
    StreamSpec(name="user.events", owner="user", partitions=8, max_len=1_000_000, max_age_s=_WEEK),
    StreamSpec(
        name="chat.commands", owner="chat", partitions=16, max_len=200_000, max_age_s=_DAY,
        senders=_CALLERS,
    ),
    StreamSpec(name="chat.events", owner="chat", partitions=16, max_len=2_000_000, max_age_s=_WEEK),
    StreamSpec(
        name="notification.commands", owner="notification", partitions=8, max_len=100_000,
        max_age_s=_DAY, senders=_CALLERS,
    ),
    StreamSpec(
        name="notification.events", owner="notification", partitions=8, max_len=1_000_000,
        max_age_s=_WEEK,
    ),
    StreamSpec(
        name="notification.delivery", owner="notification", partitions=8, max_len=200_000,
        max_age_s=_DAY,
        description="notification -> its own delivery workers (log, webhook); by user id",
        private=True,
    ),
    StreamSpec(
        name="gateway.events", owner="gateway", partitions=8, max_len=200_000, max_age_s=3600,
        description="connection facts for presence; older than an hour is meaningless",
    ),
)  # fmt: skip

GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec(service="auth", streams=("auth.commands",)),
    GroupSpec(
        service="auth",
        role="revocations",
        streams=("auth.events",),
        description="carries out every announced session revocation in Redis, so that one "
        "relayed from the outbox (its instance died after the commit) still ends the session",
    ),
    GroupSpec(service="user", streams=("user.commands", "auth.events", "gateway.events")),
    GroupSpec(service="chat", streams=("chat.commands", "user.events")),
    GroupSpec(
        service="notification",
        streams=("notification.commands", "chat.events", "user.events", "notification.delivery"),
    ),
    GroupSpec(
        service="gateway",
        streams=("auth.events",),
        per_instance=True,
        description="every gateway instance must see every revocation and key rotation",
    ),
    GroupSpec(
        service="gateway",
        role="cache",
        streams=("user.events", "chat.events"),
        description="the events that make cached responses stale; the cache is in Redis and "
        "shared by every instance, so one instance drops the entries for all",
    ),
)

CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(
        family="rt.conv",
        template="rt:{conv:<id>}",
        publishers=("chat",),
        subscribers=("gateway",),
        description="a conversation's real-time events (fast path; chat holds the record)",
        payloads=(
            "chat.conversation_created",
            "chat.message_posted",
            "chat.message_edited",
            "chat.message_deleted",
            "chat.read_updated",
            "chat.member_added",
            "chat.member_removed",
            "chat.typing_changed",
        ),
    ),
    ChannelSpec(
        family="rt.user",
        template="rt:{user:<id>}",
        publishers=("user", "chat", "notification"),
        subscribers=("gateway",),
        description="one user's personal events: presence of contacts, membership, notifications",
        payloads=(
            "user.presence_changed",
            "user.profile_updated",
            "chat.conversation_created",
            "chat.member_added",
            "chat.member_removed",
            "chat.read_updated",
            "notification.notification_created",
            "notification.notifications_read",
        ),
    ),
    ChannelSpec(
        family="reply",
        template="reply:{<id>}",
        # Whoever answers a command publishes on its caller's channel; each caller listens on its
        # own (derived from the command streams' senders, so the two cannot disagree).
        publishers=tuple(s.owner for s in STREAMS if s.senders),
        subscribers=tuple(sorted({c for s in STREAMS for c in s.senders})),
        sharded=True,
        per_service=True,
        description="per-instance reply channel (<id> = <caller service>.<instance id>); "
        "command replies",
        payloads=("*.reply",),
    ),
)

_MODULES: tuple[ModuleType, ...] = (auth, user, chat, notification, gateway)


def _collect(modules: tuple[ModuleType, ...]) -> tuple[type[Message], ...]:
    found: list[type[Message]] = []
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, (Event, Command, ChannelMessage))
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return tuple(sorted(found, key=lambda c: (c.TYPE, c.VERSION)))


MESSAGES: tuple[type[Message], ...] = _collect(_MODULES)

_STREAMS = {s.name: s for s in STREAMS}
_GROUPS = {g.name: g for g in GROUPS}
_CHANNELS = {c.family: c for c in CHANNELS}
_MESSAGES: dict[tuple[str, int], type[Message]] = {}


def stream(name: str) -> StreamSpec:
    """The declared stream ``name`` (e.g. ``"chat.events"``); raises UnknownMessageError."""
    try:
        return _STREAMS[name]
    except KeyError:
        raise UnknownMessageError(f"no stream {name!r}") from None


def group(name: str) -> GroupSpec:
    """The consumer group named ``name`` (a service, or ``<service>.<role>``); raises
    UnknownMessageError."""
    try:
        return _GROUPS[name]
    except KeyError:
        raise UnknownMessageError(f"no consumer group {name!r}") from None


def channel(family: str) -> ChannelSpec:
    """The channel family ``family`` (``rt.conv``, ``rt.user``, ``reply``)."""
    try:
        return _CHANNELS[family]
    except KeyError:
        raise UnknownMessageError(f"no channel family {family!r}") from None


def groups_reading(stream_name: str) -> tuple[GroupSpec, ...]:
    """Every consumer group that reads ``stream_name``."""
    return tuple(g for g in GROUPS if stream_name in g.streams)


def message_class(type_name: str, version: int) -> type[Message]:
    """The class of a (type, major version); raises UnknownMessageError."""
    try:
        return _MESSAGES[(type_name, version)]
    except KeyError:
        raise UnknownMessageError(f"no message {type_name!r} v{version}") from None


def stream_of(cls: type[Message]) -> StreamSpec:
    """The stream an Event or Command class is written to."""
    if not issubclass(cls, (Event, Command)):
        raise UnknownMessageError(f"{cls.__name__} travels on a channel, not a stream")
    return stream(cls.STREAM)


def _validate_message(cls: type[Message]) -> None:
    owner = cls.TYPE.split(".", 1)[0]
    if owner not in SERVICES or cls.TYPE.count(".") != 1:
        raise ContractError(f"{cls.__name__}: TYPE {cls.TYPE!r} must be '<service>.<name>'")
    if cls.KEY is not None and cls.KEY not in cls.__struct_fields__:
        raise ContractError(f"{cls.__name__}: KEY {cls.KEY!r} is not a field")
    if issubclass(cls, (Event, Command)):
        spec = stream(cls.STREAM)
        expected = "events" if issubclass(cls, Event) else "commands"
        private_event = spec.private and issubclass(cls, Event)
        if spec.owner != owner or not (spec.name.endswith(f".{expected}") or private_event):
            raise ContractError(f"{cls.__name__}: {cls.TYPE} cannot go to {spec.name}")
    elif issubclass(cls, ChannelMessage) and owner not in channel(cls.CHANNEL).publishers:
        raise ContractError(f"{cls.__name__}: {owner} may not publish on {cls.CHANNEL}")
    if (cls.TYPE, cls.VERSION) in _MESSAGES:
        raise ContractError(f"{cls.TYPE} v{cls.VERSION} is declared twice")
    _MESSAGES[(cls.TYPE, cls.VERSION)] = cls


def _validate() -> None:
    for cls in MESSAGES:
        _validate_message(cls)
    for g in GROUPS:
        for name in g.streams:
            if stream(name).private and g.service != stream(name).owner:
                raise ContractError(f"{g.name} may not read {name}, private to its owner")
    for s in STREAMS:
        if not set(s.senders) <= set(SERVICES):
            raise ContractError(f"stream {s.name} names an unknown sender: {s.senders}")
    for c in CHANNELS:
        if not set(c.publishers) | set(c.subscribers) <= set(SERVICES):
            raise ContractError(f"channel {c.family} names an unknown service")
        for payload in c.payloads:
            if payload != "*.reply" and not any(t == payload for t, _ in _MESSAGES):
                raise ContractError(f"channel {c.family} names unknown payload {payload!r}")


_validate()
