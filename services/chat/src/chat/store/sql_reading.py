"""Read markers (a column of ``members``) and exact unread counts, counted by the database."""

from __future__ import annotations

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chat.store.tables import conversations, members, messages


class SqlReading:
    """The :class:`~chat.store.protocols.ReadStore` on the service's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def marker(self, conversation_id: str, user_id: str) -> int:
        """A member's read marker (0 for a non-member)."""
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(members.c.last_read_seq).where(
                    members.c.conversation_id == conversation_id, members.c.user_id == user_id
                )
            )
        return int(value or 0)

    async def markers_in(self, conversation_id: str) -> dict[str, int]:
        """Every member's read marker, by user id."""
        query = select(members.c.user_id, members.c.last_read_seq).where(
            members.c.conversation_id == conversation_id
        )
        async with self._engine.connect() as conn:
            return {row[0]: int(row[1] or 0) for row in await conn.execute(query)}

    async def advance(self, conversation_id: str, user_id: str, seq: int) -> int:
        """``UPDATE ... WHERE last_read_seq < seq``: concurrent marks can only move it forward."""
        async with self._engine.begin() as conn:
            last = await conn.scalar(
                select(conversations.c.last_seq).where(conversations.c.id == conversation_id)
            )
            target = min(seq, int(last or 0))
            await conn.execute(
                update(members)
                .where(
                    members.c.conversation_id == conversation_id,
                    members.c.user_id == user_id,
                    members.c.last_read_seq < target,
                )
                .values(last_read_seq=target)
            )
            value = await conn.scalar(
                select(members.c.last_read_seq).where(
                    members.c.conversation_id == conversation_id, members.c.user_id == user_id
                )
            )
        return int(value or 0)

    async def unread(self, conversation_id: str, user_id: str) -> int:
        """Messages above the marker, sent by others, not deleted."""
        return (await self._counts(user_id, conversation_id)).get(conversation_id, 0)

    async def unread_all(self, user_id: str) -> dict[str, int]:
        """The unread count of every conversation the user is in (zeros included)."""
        return await self._counts(user_id, None)

    async def _counts(self, user_id: str, conversation_id: str | None) -> dict[str, int]:
        m, msg = members, messages
        query = (
            select(m.c.conversation_id, func.count(msg.c.id))
            .select_from(
                m.outerjoin(
                    msg,
                    and_(
                        msg.c.conversation_id == m.c.conversation_id,
                        msg.c.seq > m.c.last_read_seq,
                        msg.c.sender_id != user_id,
                        msg.c.deleted.is_(False),
                    ),
                )
            )
            .where(m.c.user_id == user_id)
            .group_by(m.c.conversation_id)
        )
        if conversation_id is not None:
            query = query.where(m.c.conversation_id == conversation_id)
        async with self._engine.connect() as conn:
            return {row[0]: int(row[1]) for row in await conn.execute(query)}
