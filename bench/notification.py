"""Notification throughput: message events turned into notifications per second, per process.

    uv run python bench/notification.py          # starts its own cluster on ports 7421-7426
    PARLEY_BENCH_REDIS=redis://host:port uv run python bench/notification.py

One conversation of ``MEMBERS`` members (100; ``PARLEY_BENCH_MEMBERS=1000`` for a large group) on
SQLite, the audience cache warm. Each posted message runs the whole creation path of the service's
handler: membership read, viewers, 99 audience cache reads, the decision, coalescing, one
transaction (inbox + notifications + delivery rows + badge deltas + outbox rows), then the appends
(the notification_created event and the log job per recipient) and the in-app frames; the outbox
forgets appended rows in the background, as in the service. The delivery workers are not running,
so the figure is creation, not delivery. Events of one conversation run one after another, as the
bus runs one key's lane. Figures (ratios travel between machines):

- ``fresh_events_per_s`` / ``fresh_notifications_per_s``: no coalescing (every event creates 99);
- ``coalesced_events_per_s``: a burst within the window (every event grows 99 open ones);
- ``baseline_events_per_s``: the irreducible database work of one event (inbox row + 99
  notification rows in one transaction, nothing else) on the same database;
- ``fresh_over_baseline`` and ``coalesced_over_baseline``: the whole path over that baseline.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# `notification` package: drop the folder before importing the service.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from sqlalchemy import insert  # noqa: E402

from contracts import chat  # noqa: E402
from contracts.base import new_message_id, utcnow  # noqa: E402
from notification.bootstrap import MIGRATIONS, assemble  # noqa: E402
from notification.config import Settings  # noqa: E402
from notification.store.tables import notifications, processed_messages  # noqa: E402
from parley.cluster import bench_cluster  # noqa: E402
from shared.redis.client import RedisSettings, create_client  # noqa: E402
from shared.service.database import Database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("PARLEY_BENCH_PORTS", "7421-7426")
MEMBERS = int(os.environ.get("PARLEY_BENCH_MEMBERS", "100"))
EVENTS = int(os.environ.get("PARLEY_BENCH_EVENTS", "60"))


def posted(conversation_id: str, sender: str, seq: int) -> chat.MessagePosted:
    return chat.MessagePosted(
        conversation_id=conversation_id,
        message=chat.ChatMessage(
            id=new_message_id(),
            conversation_id=conversation_id,
            seq=seq,
            sender_id=sender,
            body=f"message {seq}",
            client_msg_id=new_message_id(),
            created_at=utcnow(),
        ),
    )


async def per_second(n: int, op: Callable[[int], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for i in range(n):
        await op(i)
    return n / (time.perf_counter() - started)


async def path_rate(url: str, db: Database, *, window: float) -> tuple[float, int]:
    """Events/s through the handler and notifications created per event."""
    redis = await create_client(RedisSettings(url=url))
    service = assemble(redis, db.engine, Settings(coalesce_window=window, instance="bench"))
    service.outbox.start()  # the relay and the batched forgetting of appended rows
    members = [f"u-{uuid.uuid4().hex[:10]}" for _ in range(MEMBERS)]
    conversation = f"c-{uuid.uuid4().hex[:10]}"
    created = chat.ConversationCreated(
        conversation_id=conversation, kind="group", creator_id=members[0], member_ids=members
    )
    handlers = service.handlers
    await handlers.projections.on_conversation_created(created, new_message_id())
    await handlers.messages.on_message_posted(posted(conversation, members[0], 1), "warm-up")
    counts: list[int] = []

    async def one(i: int) -> None:
        event = posted(conversation, members[i % 3], i + 2)
        outcome = await handlers.messages.on_message_posted(event, new_message_id())
        counts.append(len(outcome.created))

    rate = await per_second(EVENTS, one)
    await service.stop()
    await redis.aclose()
    return rate, round(sum(counts) / len(counts))


async def baseline_rate(db: Database) -> float:
    """Inbox row + 99 notification rows per event, one transaction, nothing else."""

    async def one(i: int) -> None:
        now = utcnow()
        rows = [
            {
                "id": new_message_id(),
                "user_id": f"u-{k}",
                "kind": "message",
                "conversation_id": "c-baseline",
                "sender_id": "u-0",
                "seq": i,
                "count": 1,
                "preview": "message",
                "read": False,
                "created_at": now,
                "updated_at": now,
            }
            for k in range(1, MEMBERS)
        ]
        async with db.engine.begin() as conn:
            await conn.execute(insert(processed_messages).values(message_id=new_message_id()))
            await conn.execute(insert(notifications), rows)

    return await per_second(EVENTS, one)


async def run(url: str) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/notification.db")
        await db.migrate(MIGRATIONS)
        baseline = await baseline_rate(db)
        fresh, fresh_per_event = await path_rate(
            url, db, window=timedelta(microseconds=1).total_seconds()
        )
        coalesced, _ = await path_rate(url, db, window=3600.0)
        await db.close()
    return {
        "members": MEMBERS,
        "events": EVENTS,
        "baseline_events_per_s": round(baseline, 1),
        "fresh_events_per_s": round(fresh, 1),
        "fresh_notifications_per_s": round(fresh * fresh_per_event, 1),
        "coalesced_events_per_s": round(coalesced, 1),
        "fresh_over_baseline": round(fresh / baseline, 3),
        "coalesced_over_baseline": round(coalesced / baseline, 3),
    }


def main() -> None:
    with bench_cluster(ROOT / ".parley", PORTS) as url:
        figures = asyncio.run(run(url))
    print(f"{'figure':<28} {'value':>12}")
    for name, value in figures.items():
        print(f"{name:<28} {value!s:>12}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
