"""The SQL store: notifications, preferences, delivery outcomes, local projections, the outbox.

SQLAlchemy Core on the async engine; the same statements run on SQLite and PostgreSQL. Upserts
are written as "delete then insert" or "insert if missing" so no dialect-specific ON CONFLICT is
needed, which is fine for rows only this service writes, one key at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notification.domain.delivery import ChannelName, DeliveryJob
from notification.domain.notifications import Notification
from notification.store.protocols import DeliveryStatus
from notification.store.sql_preferences import PreferenceQueries, aware
from notification.store.tables import (
    deliveries,
    notifications,
    processed_messages,
)
from shared.outbox import Outbox, Staged

N = notifications.c


def _notification(row: Any) -> Notification:
    return Notification(
        id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        conversation_id=row.conversation_id,
        sender_id=row.sender_id,
        seq=row.seq,
        count=row.count,
        preview=row.preview,
        read=bool(row.read),
    )


def _row(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "user_id": n.user_id,
        "kind": n.kind,
        "conversation_id": n.conversation_id,
        "sender_id": n.sender_id,
        "seq": n.seq,
        "count": n.count,
        "preview": n.preview,
        "read": n.read,
        "created_at": n.created_at,
        "updated_at": n.updated_at,
    }


class SqlUnit(PreferenceQueries):
    """A unit of work on one connection inside one transaction."""

    def __init__(self, conn: AsyncConnection, outbox: Outbox) -> None:
        self._conn = conn
        self._outbox = outbox

    async def claim(self, message_id: str) -> bool:
        """Record ``message_id``; False when it was already processed."""
        found = await self._conn.scalar(
            select(processed_messages.c.message_id).where(
                processed_messages.c.message_id == message_id
            )
        )
        if found is not None:
            return False
        # A concurrent duplicate makes this insert fail and the whole transaction roll back.
        await self._conn.execute(insert(processed_messages).values(message_id=message_id))
        return True

    async def open_notifications(
        self, user_ids: Sequence[str], conversation_id: str, since: datetime
    ) -> dict[str, Notification]:
        """Per user, the newest unread plain-message notification of the conversation since."""
        if not user_ids:
            return {}
        rows = await self._conn.execute(
            select(notifications)
            .where(
                N.user_id.in_(list(user_ids)),
                N.read.is_(False),
                N.conversation_id == conversation_id,
                N.kind == "message",
                N.created_at > since,
            )
            .order_by(N.created_at)
        )
        return {r.user_id: _notification(r) for r in rows}  # newest wins

    async def save_notifications(
        self, created: Sequence[Notification], grown: Sequence[Notification]
    ) -> None:
        """Insert new notifications and update grown ones."""
        if created:
            await self._conn.execute(insert(notifications), [_row(n) for n in created])
        if grown:
            await self._conn.execute(
                update(notifications)
                .where(N.id == bindparam("n_id"))
                .values(
                    count=bindparam("n_count"),
                    seq=bindparam("n_seq"),
                    sender_id=bindparam("n_sender"),
                    preview=bindparam("n_preview"),
                    updated_at=bindparam("n_updated"),
                ),
                [
                    {
                        "n_id": n.id,
                        "n_count": n.count,
                        "n_seq": n.seq,
                        "n_sender": n.sender_id,
                        "n_preview": n.preview,
                        "n_updated": n.updated_at,
                    }
                    for n in grown
                ],
            )

    async def queue_deliveries(self, jobs: Sequence[DeliveryJob], *, at: datetime) -> None:
        """Record each job as queued (a grown notification's earlier rows are replaced)."""
        if not jobs:
            return
        d = deliveries.c
        ids = {j.notification.id for j in jobs if j.notification.count > 1}
        if ids:
            await self._conn.execute(delete(deliveries).where(d.notification_id.in_(list(ids))))
        rows = [
            {
                "notification_id": j.notification.id,
                "channel": j.channel,
                "user_id": j.notification.user_id,
                "status": "queued",
                "attempts": 0,
                "last_error": None,
                "updated_at": at,
            }
            for j in jobs
        ]
        await self._conn.execute(insert(deliveries), rows)

    async def mark_read(
        self,
        user_id: str,
        *,
        ids: Sequence[str] = (),
        conversation_id: str | None = None,
        up_to_seq: int | None = None,
        everything: bool = False,
    ) -> list[str]:
        """Mark unread notifications read; returns the ids that changed."""
        where = [N.user_id == user_id, N.read.is_(False)]
        if not everything:
            if ids:
                where.append(N.id.in_(list(ids)))
            elif conversation_id is not None:
                where.append(N.conversation_id == conversation_id)
                if up_to_seq is not None:
                    where.append(N.seq <= up_to_seq)
            else:
                return []
        changed = [r[0] for r in await self._conn.execute(select(N.id).where(*where))]
        if changed:
            await self._conn.execute(
                update(notifications).where(N.id.in_(changed), N.read.is_(False)).values(read=True)
            )
        return changed

    async def unread_count(self, user_id: str) -> int:
        """The exact unread count."""
        count = await self._conn.scalar(
            select(func.count()).where(N.user_id == user_id, N.read.is_(False))
        )
        return int(count or 0)

    async def unread_counts(self, user_ids: Sequence[str]) -> dict[str, int]:
        """The exact unread counts of several users (zero included), in one query."""
        if not user_ids:
            return {}
        rows = await self._conn.execute(
            select(N.user_id, func.count())
            .where(N.user_id.in_(list(user_ids)), N.read.is_(False))
            .group_by(N.user_id)
        )
        counts = dict.fromkeys(user_ids, 0)
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts

    async def write_outbox(self, staged: Sequence[Staged]) -> None:
        """Store stream entries in this transaction (one insert); appended after the commit."""
        await self._outbox.write(self._conn, staged)

    async def page(
        self, user_id: str, *, before: tuple[datetime, str] | None, limit: int
    ) -> list[Notification]:
        """Newest first by (updated_at, id), strictly before ``before``."""
        query = select(notifications).where(N.user_id == user_id)
        if before is not None:
            at, last_id = before
            query = query.where(or_(N.updated_at < at, and_(N.updated_at == at, N.id < last_id)))
        rows = await self._conn.execute(
            query.order_by(N.updated_at.desc(), N.id.desc()).limit(limit)
        )
        return [_notification(r) for r in rows]

    async def record_outcome(
        self,
        notification_id: str,
        channel: ChannelName,
        *,
        status: DeliveryStatus,
        attempts: int,
        error: str | None,
        at: datetime,
    ) -> None:
        """Record how delivering one notification on one channel ended."""
        d = deliveries.c
        await self._conn.execute(
            update(deliveries)
            .where(d.notification_id == notification_id, d.channel == channel)
            .values(
                status=status,
                attempts=d.attempts + attempts,
                last_error=error[:500] if error else None,
                updated_at=at,
            )
        )


class SqlNotificationStore:
    """Units of work on the service's engine; their stream entries go to ``outbox``."""

    def __init__(self, engine: AsyncEngine, *, outbox: Outbox) -> None:
        self._engine = engine
        self._outbox = outbox

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[SqlUnit]:
        """One transaction."""
        async with self._engine.begin() as conn:
            yield SqlUnit(conn, self._outbox)


async def delivery_rows(engine: AsyncEngine, notification_id: str) -> dict[str, tuple[str, int]]:
    """Channel -> (status, attempts) of one notification (for operators and tests)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(deliveries.c.channel, deliveries.c.status, deliveries.c.attempts).where(
                deliveries.c.notification_id == notification_id
            )
        )
        return {r.channel: (r.status, r.attempts) for r in rows}
