"""Dead-letter streams: ``<stream>.dlq``, one per logical stream, entries with their provenance.

A dead-letter entry keeps the original fields under their own names (``e`` and ``p``, or whatever a
foreign producer wrote) plus provenance fields prefixed ``dlq.``: source stream and partition, entry
id, group, error, attempts, first and last failure. ``redrive`` strips the provenance again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from contracts.base import utcnow
from contracts.topology import StreamSpec
from shared.bus import wire
from shared.bus.errors import DeadLetterError
from shared.redis.client import AnyRedis

PREFIX: Final = b"dlq."
DLQ_MAX_LEN: Final = 100_000


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """Where a dead letter came from and why it died."""

    stream: str
    partition: int
    entry_id: str
    group: str
    error: str
    attempts: int
    first_failure: datetime
    last_failure: datetime

    def fields(self) -> wire.Fields:
        """The provenance as ``dlq.*`` entry fields."""
        return {
            PREFIX + b"stream": self.stream.encode(),
            PREFIX + b"partition": str(self.partition).encode(),
            PREFIX + b"entry_id": self.entry_id.encode(),
            PREFIX + b"group": self.group.encode(),
            PREFIX + b"error": self.error[:2000].encode(),
            PREFIX + b"attempts": str(self.attempts).encode(),
            PREFIX + b"first_failure": self.first_failure.isoformat().encode(),
            PREFIX + b"last_failure": self.last_failure.isoformat().encode(),
        }

    @classmethod
    def from_fields(cls, fields: wire.Fields) -> Provenance:
        """Read the provenance back from a dead-letter entry."""

        def get(name: str) -> str:
            value = fields.get(PREFIX + name.encode())
            if value is None:
                raise DeadLetterError(f"dead letter lacks {name}")
            return wire.as_text(value)

        return cls(
            stream=get("stream"),
            partition=int(get("partition")),
            entry_id=get("entry_id"),
            group=get("group"),
            error=get("error"),
            attempts=int(get("attempts")),
            first_failure=datetime.fromisoformat(get("first_failure")),
            last_failure=datetime.fromisoformat(get("last_failure")),
        )


def original_fields(fields: wire.Fields) -> wire.Fields:
    """The fields of the source entry, without provenance."""
    return {k: v for k, v in fields.items() if not k.startswith(PREFIX)}


class DeadLetters:
    """The dead-letter stream of one logical stream."""

    def __init__(self, client: AnyRedis, spec: StreamSpec) -> None:
        self._client = client
        self.spec = spec
        self.key = spec.dead_letter_key()

    async def add(self, fields: wire.Fields, provenance: Provenance) -> str:
        """Append a dead letter; returns its id in the dead-letter stream."""
        entry = {**original_fields(fields), **provenance.fields()}
        new_id = await self._client.xadd(
            self.key, wire.redis_fields(entry), maxlen=DLQ_MAX_LEN, approximate=True
        )
        return wire.as_text(new_id)

    async def size(self) -> int:
        """How many dead letters the stream holds."""
        return int(await self._client.xlen(self.key))

    async def entries(
        self, *, start: str = "-", end: str = "+", count: int = 100
    ) -> list[tuple[str, wire.Fields]]:
        """Dead letters in id order."""
        rows: Any = await self._client.xrange(self.key, start, end, count=count)
        return [(wire.as_text(i), f) for i, f in rows]

    async def get(self, dlq_id: str) -> wire.Fields:
        """One dead letter; raises DeadLetterError when absent."""
        rows: Any = await self._client.xrange(self.key, dlq_id, dlq_id, count=1)
        if not rows:
            raise DeadLetterError(f"no dead letter {dlq_id} in {self.key}")
        fields: wire.Fields = rows[0][1]
        return fields

    async def redrive(self, dlq_id: str) -> str:
        """Put a dead letter back on its source partition for its group only; returns the new id.

        It is removed from the dead-letter stream once re-added (a crash in between leaves a copy
        in both, never none).
        """
        fields = await self.get(dlq_id)
        prov = Provenance.from_fields(fields)
        entry = {**original_fields(fields), wire.ONLY_GROUP: prov.group.encode()}
        new_id = await self._client.xadd(self.spec.key(prov.partition), wire.redis_fields(entry))
        await self._client.xdel(self.key, dlq_id)
        return wire.as_text(new_id)

    async def purge(self, dlq_ids: list[str] | None = None) -> int:
        """Delete the given dead letters, or all of them; returns how many were removed."""
        if dlq_ids is None:
            size = await self.size()
            await self._client.delete(self.key)
            return size
        return int(await self._client.xdel(self.key, *dlq_ids)) if dlq_ids else 0


def now() -> datetime:
    """The failure timestamp clock (UTC)."""
    return utcnow()
