"""The service's transactional outbox: its events and its delivery jobs, in one table.

The ``notification.events`` entries and the delivery jobs on ``notification.delivery`` are staged
with :class:`shared.outbox.Outbox`, written in the transaction of the notifications they belong
to, and appended right after the commit; the outbox's relay appends what a crash or a failed
append left. One outbox serves both streams (the registry declares both). The partitions it
appends to keep their stream's retention (the outbox tells the publisher each entry's stream).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from notification.store.tables import outbox as outbox_table
from shared.bus import Publisher
from shared.bus.metrics import process_metrics
from shared.outbox import Outbox
from shared.redis.client import AnyRedis

PRODUCER = "notification"


def service_publisher(client: AnyRedis) -> Publisher:
    """The publisher of the service's stream entries."""
    return Publisher(client, producer=PRODUCER, metrics=process_metrics())


def service_outbox(engine: AsyncEngine, publisher: Publisher) -> Outbox:
    """The outbox on the service's ``outbox`` table; ``publisher`` stamps and appends entries.

    Its timings are the outbox's own: rows older than 10 s relayed every 5 s, appended rows
    forgotten every second."""
    return Outbox(engine, outbox_table, publisher)
