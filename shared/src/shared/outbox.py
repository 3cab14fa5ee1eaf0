"""A transactional outbox: an event is stored in the transaction of the change it announces.

>>> staged = outbox.stage(AccountRegistered(...))   # the envelope is made here
>>> async with engine.begin() as conn:
...     await accounts.add(conn, account)
...     await outbox.write(conn, [staged])            # same transaction as the change
>>> await outbox.send([staged])                      # after the commit: append to the stream

Without it, a service that commits and then appends loses the event when it dies (or Redis
refuses the append) in between, and every consumer misses the change for good. With it:

- A transaction's events are one row (a MessagePack array of entries), so a fan-out of hundreds
  of events costs one ``INSERT`` of one row.
- ``send`` appends right after the commit, the usual path, and never raises: a failed append
  leaves the row, and the command that made the change still succeeds (its event is durable).
- Appended rows are forgotten in batches, one ``DELETE`` per ``forget_interval`` per instance,
  not one per event.
- The relay (:meth:`Outbox.run`, one task per instance) appends rows older than
  ``relay_after``, in the order they were written, and forgets them: after a crash, a Redis
  outage, or a restart that came between a commit and its append.
- A row keeps its envelope, so an event appended twice (the instance died after the append,
  before the forget; two instances relayed the same row) carries the same message id both times,
  and consumers drop the copy (the bus deduplicates by message id for ``handled_ttl``, 24 h).

Order: the usual path appends in commit order per partition key. A relayed row lands after
events of the same key that were appended while it waited; consumers see at-least-once,
per-key order only among events that took the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from prometheus_client import Counter, Gauge
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts import registry
from contracts.base import DecodeError, Envelope, Event
from contracts.topology import StreamSpec
from shared.bus import Publisher, wire
from shared.bus.publisher import StreamOf

log = logging.getLogger(__name__)

TABLE: Final = "outbox"

OUTBOX_SEND_FAILURES: Final = Counter(
    "parley_outbox_send_failures",
    "Appends after a commit that failed; the relay appends those events later.",
    ["service"],
)
OUTBOX_RELAYED: Final = Counter(
    "parley_outbox_relayed",
    "Events the relay appended: their first append failed or never happened.",
    ["service"],
)
OUTBOX_BACKLOG: Final = Gauge(
    "parley_outbox_backlog",
    "Rows older than the relay delay that the relay found on its last pass.",
    ["service"],
)


def outbox_columns() -> list[Column[object]]:
    """The outbox's columns (a service's table and its migration both use these).

    One row per transaction: ``entries`` holds every event the transaction staged, in order, as a
    MessagePack array of ``[partition key, envelope, payload]``; ``batch_id`` is the message id of
    the first of them. A fan-out of hundreds of events costs one row, not hundreds.
    """
    return [
        # Insertion order: the relay appends in it. SQLite only autoincrements INTEGER keys.
        Column(
            "position",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("batch_id", String(64), nullable=False, unique=True),
        Column("size", Integer, nullable=False),
        Column("entries", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    ]


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table in a service's ``metadata``."""
    return Table(TABLE, metadata, *outbox_columns())


@dataclass(frozen=True, slots=True)
class Staged:
    """An event with its envelope and partition key, ready to be written and appended."""

    envelope: Envelope
    key: str
    fields: wire.Fields
    """The stream entry: the envelope and the payload, encoded."""
    created_at: datetime
    spec: StreamSpec | None = None
    """The stream (the publisher trims the partitions it appends to and counts per stream)."""

    @property
    def message_id(self) -> str:
        """The event's message id (its envelope's)."""
        return self.envelope.id


Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


_ENCODER = msgspec.msgpack.Encoder()
_ENTRIES = msgspec.msgpack.Decoder(list[tuple[str, bytes, bytes]])


def _decode_entries(raw: bytes) -> list[tuple[str, wire.Fields, Envelope]]:
    """A row's entries as ``(partition key, entry fields, envelope)``; raises DecodeError."""
    out = []
    for key, envelope, payload in _ENTRIES.decode(raw):
        fields = {wire.ENVELOPE: envelope, wire.PAYLOAD: payload}
        out.append((key, fields, wire.decode_envelope(fields)))
    return out


class Outbox:
    """One service instance's outbox: staging, the after-commit append, and the relay."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        publisher: Publisher,
        *,
        relay_after: float = 10.0,
        relay_interval: float = 5.0,
        forget_interval: float = 1.0,
        batch: int = 500,
        clock: Clock = _utc_now,
        stream_of: StreamOf = registry.stream_of,
    ) -> None:
        self._engine = engine
        self._table = table
        self._publisher = publisher
        self.relay_after = relay_after
        self.relay_interval = relay_interval
        self.forget_interval = forget_interval
        self._batch = batch
        self._clock = clock
        self._stream_of = stream_of
        self._sent: set[str] = set()
        self._labels = (publisher.producer,)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def stage(self, event: Event) -> Staged:
        """``event`` with a new envelope (caused by the message being handled, if any)."""
        envelope = self._publisher.envelope_for(event)
        spec = self._stream_of(type(event))
        key = spec.key_for(event.partition_value() or envelope.id)
        fields = wire.entry_fields(envelope, event)
        return Staged(envelope, key, fields, self._clock(), spec)

    async def write(self, conn: AsyncConnection, staged: Sequence[Staged]) -> None:
        """Store ``staged`` in ``conn``'s transaction (commit it with the change): one row.

        Hand :meth:`send` exactly the events one ``write`` stored: their row is forgotten once
        they are appended.
        """
        if not staged:
            return
        entries = _ENCODER.encode(
            [(s.key, s.fields[wire.ENVELOPE], s.fields[wire.PAYLOAD]) for s in staged]
        )
        await conn.execute(
            insert(self._table).values(
                batch_id=staged[0].message_id,
                size=len(staged),
                entries=entries,
                created_at=staged[0].created_at,
            )
        )

    async def send(self, staged: Sequence[Staged]) -> bool:
        """Append committed ``staged`` events in order; False (logged) when the relay must."""
        if not staged:
            return True
        try:
            for s in staged:
                if s.spec is not None:
                    self._publisher.note_stream(s.key, s.spec)
            await asyncio.gather(*(self._publisher.append(s.key, s.fields) for s in staged))
        except Exception:
            OUTBOX_SEND_FAILURES.labels(*self._labels).inc()
            log.warning(
                "appending %d committed event(s) failed; the outbox relay appends them later",
                len(staged),
                exc_info=True,
            )
            return False
        self._sent.add(staged[0].message_id)
        return True

    async def forget_sent(self) -> int:
        """Delete the rows of events appended so far; returns how many events they held."""
        if not self._sent:
            return 0
        ids, self._sent = list(self._sent), set()
        t = self._table
        forgotten = 0
        try:
            for start in range(0, len(ids), self._batch):
                chunk = ids[start : start + self._batch]
                async with self._engine.begin() as conn:
                    result = await conn.execute(
                        delete(t).where(t.c.batch_id.in_(chunk)).returning(t.c.size)
                    )
                    forgotten += sum(result.scalars())
        except Exception:
            log.warning("forgetting appended outbox rows failed; trying again", exc_info=True)
            self._sent.update(ids)  # not yet deleted ones are deleted on the next pass
        return forgotten

    async def relay_once(self) -> int:
        """Append and forget rows older than ``relay_after``; returns how many events."""
        older_than = self._clock() - timedelta(seconds=self.relay_after)
        t = self._table
        query = (
            select(t.c.batch_id, t.c.entries)
            .where(t.c.created_at < older_than)
            .order_by(t.c.position)
            .limit(self._batch)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        pending = [r for r in rows if r.batch_id not in self._sent]
        OUTBOX_BACKLOG.labels(*self._labels).set(len(pending))
        appended = 0
        for row in pending:
            try:
                entries = _decode_entries(bytes(row.entries))
            except (msgspec.DecodeError, DecodeError):
                log.error("outbox row %s is corrupt; left for an operator", row.batch_id)
                continue
            # In position order, and within a row in staging order: an event is appended only
            # after those before it.
            for key, _, envelope in entries:
                spec = self._spec_of(envelope.type, envelope.version)
                if spec is not None:
                    self._publisher.note_stream(key, spec)
            await asyncio.gather(*(self._publisher.append(key, f) for key, f, _ in entries))
            self._sent.add(str(row.batch_id))
            appended += len(entries)
        if appended:
            OUTBOX_RELAYED.labels(*self._labels).inc(appended)
            log.warning("the outbox relay appended %d event(s) a commit had left", appended)
        await self.forget_sent()
        return appended

    async def pending(self) -> list[Staged]:
        """Every event still in the outbox, in the order the relay would append them."""
        return await pending_entries(self._engine, self._table)

    def _spec_of(self, type_name: str, version: int) -> StreamSpec | None:
        try:
            return self._stream_of(registry.message_class(type_name, version))
        except Exception:  # a type only the service knows (its stream_of hook maps classes)
            return None

    async def count(self) -> int:
        """Events still in the outbox (appended ones not yet forgotten included)."""
        async with self._engine.connect() as conn:
            query = select(func.coalesce(func.sum(self._table.c.size), 0))
            return int((await conn.execute(query)).scalar_one())

    def start(self) -> None:
        """Run the relay and the forgetting in the background until :meth:`stop`."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop the background task, then forget what was appended meanwhile."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.forget_sent()

    async def run(self) -> None:
        """Forget appended rows every ``forget_interval``; relay every ``relay_interval``."""
        loop = asyncio.get_running_loop()
        next_relay = loop.time()
        while not self._stop.is_set():
            try:
                if loop.time() >= next_relay:
                    next_relay = loop.time() + self.relay_interval
                    await self.relay_once()
                else:
                    await self.forget_sent()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay pass failed; trying again", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.forget_interval)


async def pending_entries(engine: AsyncEngine, table: Table) -> list[Staged]:
    """Every event in the outbox ``table``, in the order the relay would append them (for
    operators and tests; appended ones not yet forgotten included)."""
    query = select(table.c.entries, table.c.created_at).order_by(table.c.position)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        Staged(envelope, key, fields, row.created_at)
        for row in rows
        for key, fields, envelope in _decode_entries(bytes(row.entries))
    ]
