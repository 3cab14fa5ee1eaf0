"""The event bus: typed, partitioned Redis Streams with per-key order, retries and dead letters.

- :class:`Publisher` appends messages to the partition of their key (coalesced into pipelines)
  and trims streams without ever dropping an unacknowledged entry.
- :class:`Consumer` is one instance of a consumer group: it leases partitions, runs each key's
  messages in order, retries with backoff, dead-letters, deduplicates across instances and
  answers commands.
- :class:`Requester` sends a command and awaits its typed reply (or :class:`RequestTimeoutError`).
- :mod:`shared.bus.admin` holds the operator tools behind ``parley events``.

See ``docs/events.md`` for the delivery guarantees and failure semantics.
"""

from __future__ import annotations

from shared.bus import admin
from shared.bus.consumer import Consumer
from shared.bus.context import MessageContextFilter, current
from shared.bus.deadletter import DeadLetters, Provenance
from shared.bus.errors import (
    BusError,
    DeadLetterError,
    PermanentError,
    RequestTimeoutError,
    TargetCircuitOpen,
    UnknownStreamError,
)
from shared.bus.handling import Handler
from shared.bus.metrics import BusMetrics
from shared.bus.publisher import Publisher
from shared.bus.replies import Requester
from shared.bus.settings import ConsumerSettings
from shared.bus.wire import Delivery

__all__ = [
    "BusError",
    "BusMetrics",
    "Consumer",
    "ConsumerSettings",
    "DeadLetterError",
    "DeadLetters",
    "Delivery",
    "Handler",
    "MessageContextFilter",
    "PermanentError",
    "Provenance",
    "Publisher",
    "RequestTimeoutError",
    "Requester",
    "TargetCircuitOpen",
    "UnknownStreamError",
    "admin",
    "current",
]
