"""Tuning of a consumer; the defaults suit production, tests shorten the timings."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ConsumerSettings(BaseModel):
    """How one consumer instance reads, retries and shares partitions."""

    batch: int = Field(default=256, ge=1, le=4096)
    """Most entries one XREADGROUP returns per partition."""
    block_ms: int = Field(default=2000, ge=1)
    """How long a read waits for new entries."""
    max_in_flight: int = Field(default=2048, ge=1)
    """Most messages read and not yet finished, over all partitions of the instance."""
    max_concurrency: int = Field(default=32, ge=1)
    """Most handlers running at once per stream (keep it below the Redis pool size)."""
    max_deliveries: int = Field(default=5, ge=1)
    """Attempts before a failing message goes to the dead-letter stream."""
    backoff_base: float = Field(default=0.2, gt=0)
    """Wait before the second attempt; doubles for each further one."""
    backoff_max: float = Field(default=30.0, gt=0)
    """Upper bound of one backoff wait."""
    lease_ttl: float = Field(default=10.0, gt=0)
    """Lifetime of a partition lease; a dead instance's partitions move within about this long."""
    dedupe: bool = True
    """Read and write "handled" marks, so a message is handled once across instances. Off only
    for handlers that are idempotent by nature (dropping cache entries): saves a read per batch
    and a write per message; a redelivered message then runs again."""
    idempotent: frozenset[str] = frozenset()
    """Message types (registry names, e.g. ``chat.post_message``) whose handlers are idempotent
    by their own store (a unique key in the database): with ``dedupe`` on, messages of these
    types skip the marks like a group without ``dedupe``, and the rest of the group keeps them.
    A redelivered one runs again and its store recognises it."""
    handled_ttl: float = Field(default=24 * 3600.0, gt=0)
    """How long a "handled by this group" mark stays (the cross-instance deduplication window)."""
    reply_ttl: float = Field(default=120.0, ge=0)
    """How long a command's reply is kept, so a duplicate of the command gets it again."""
    ack_batch: int = Field(default=512, ge=1)
    """Most entries one acknowledgement call carries."""
    ack_linger: float = Field(default=0.5, ge=0)
    """Seconds a partition waits before acknowledging messages without marks (idempotent
    handlers), so those that finish within it share one ``XACK``; marks are written at once.
    Longer: fewer commands, more redelivered after a crash."""

    def marks(self, type_name: str) -> bool:
        """Whether messages of ``type_name`` get "handled" marks (read first, written when done;
        a command's reply kept beside the mark)."""
        return self.dedupe and type_name not in self.idempotent
