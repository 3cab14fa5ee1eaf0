"""A partition's pending entries: reclaiming them on acquisition, reading their delivery counts."""

from __future__ import annotations

from typing import Any

from shared.bus import wire
from shared.redis.client import AnyRedis

_CLAIM_BATCH = 1000


def id_key(entry_id: str) -> tuple[int, int]:
    """An entry id (``ms-seq``, or ``(ms-seq``) as a sortable pair."""
    ms, _, seq = entry_id.lstrip("(").partition("-")
    return int(ms), int(seq or 0)


def id_before(entry_id: str) -> str:
    """The greatest possible entry id smaller than ``entry_id``."""
    ms, seq = id_key(entry_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{2**64 - 1}" if ms > 0 else "0-0"


async def reclaim(client: AnyRedis, key: str, group: str, consumer: str) -> None:
    """Move every pending entry of ``key`` to ``consumer`` and forget consumers left empty.

    Called by the lease holder only: nobody else may be handling the partition, so everything
    pending belongs to a former owner (dead, or gone after returning its work).
    """
    while True:
        claimed = await client.xautoclaim(
            key, group, consumer, 0, "0-0", count=_CLAIM_BATCH, justid=True
        )
        if len(claimed) < _CLAIM_BATCH:
            break
    # Or every restart of an instance would leave its name behind in the group.
    for info in await client.xinfo_consumers(key, group):
        name = wire.as_text(info["name"])
        if name != consumer and not info["pending"]:
            await client.xgroup_delconsumer(key, group, name)


async def attempts_made(
    client: AnyRedis, key: str, group: str, consumer: str, entries: list[tuple[bytes, Any]]
) -> dict[str, int]:
    """Attempts already made on re-read pending entries, from their delivery counts."""
    first, last = wire.as_text(entries[0][0]), wire.as_text(entries[-1][0])
    rows: Any = await client.xpending_range(
        key, group, first, last, len(entries), consumername=consumer
    )
    # Reading history counts as one more delivery; the attempts made are one fewer.
    return {wire.as_text(r["message_id"]): max(0, r["times_delivered"] - 1) for r in rows}
