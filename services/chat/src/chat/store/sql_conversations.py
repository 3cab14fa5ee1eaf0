"""Conversations and members in SQL (SQLite or PostgreSQL through SQLAlchemy Core)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat.domain.conversations import Conversation, Kind, Member, Role
from chat.domain.errors import InvalidError
from chat.store.protocols import Summary
from chat.store.sql_messages import message_of
from chat.store.tables import conversations, members, messages

# Built once (a connect asks for it): only the parameters change.
_IDS_FOR = (
    select(conversations.c.id)
    .join(members, members.c.conversation_id == conversations.c.id)
    .where(members.c.user_id == bindparam("user_id"))
    .order_by(conversations.c.last_activity_at.desc(), conversations.c.id.desc())
    .limit(bindparam("limit"))
)


class SqlConversations:
    """The :class:`~chat.store.protocols.ConversationStore` on the service's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # A read of one statement needs no transaction: on PostgreSQL it is sent in autocommit,
        # one round trip instead of three (BEGIN, the query, ROLLBACK).
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )

    async def create(self, conv: Conversation, *, direct_pair: str | None) -> Conversation:
        """Insert the conversation and its members; a direct pair that exists wins."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(conversations).values(
                        id=conv.id,
                        kind=conv.kind.value,
                        title=conv.title,
                        created_by=conv.created_by,
                        created_at=conv.created_at,
                        last_seq=0,
                        last_activity_at=conv.created_at,
                        direct_pair=direct_pair,
                    )
                )
                await _insert_members(conn, conv.id, conv.members, conv.created_at, first=0)
        except IntegrityError:
            if direct_pair is None:
                raise
            existing = await self._by_pair(direct_pair)
            if existing is None:
                raise
            return existing
        return conv

    async def _by_pair(self, pair: str) -> Conversation | None:
        async with self._engine.connect() as conn:
            found = await conn.scalar(
                select(conversations.c.id).where(conversations.c.direct_pair == pair)
            )
        return None if found is None else await self.get(found)

    async def get(self, conversation_id: str) -> Conversation | None:
        """The conversation with its members in joining order."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(conversations).where(conversations.c.id == conversation_id)
                )
            ).first()
            if row is None:
                return None
            rows = await conn.execute(
                select(members.c.user_id, members.c.role)
                .where(members.c.conversation_id == conversation_id)
                .order_by(members.c.position)
            )
            return _conversation_of(row, [Member(r.user_id, Role(r.role)) for r in rows])

    async def last_seq(self, conversation_id: str) -> int:
        """The conversation's counter (0 when it has no messages or does not exist)."""
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(conversations.c.last_seq).where(conversations.c.id == conversation_id)
            )
        return int(value or 0)

    async def add_members(self, conversation_id: str, new: Sequence[Member]) -> None:
        """Append members after the current ones, markers at the last message."""
        if not new:
            return
        async with self._engine.begin() as conn:
            position = await conn.scalar(
                select(func.coalesce(func.max(members.c.position), -1)).where(
                    members.c.conversation_id == conversation_id
                )
            )
            last = await conn.scalar(
                select(conversations.c.last_seq).where(conversations.c.id == conversation_id)
            )
            await _insert_members(
                conn,
                conversation_id,
                new,
                None,
                first=int(position or 0) + 1,
                marker=int(last or 0),
            )

    async def remove_member(
        self, conversation_id: str, user_id: str, *, new_owner: str | None = None
    ) -> None:
        """Delete the membership (and promote ``new_owner``) in one transaction."""
        async with self._engine.begin() as conn:
            await conn.execute(
                members.delete().where(
                    members.c.conversation_id == conversation_id, members.c.user_id == user_id
                )
            )
            if new_owner is not None:
                await conn.execute(
                    update(members)
                    .where(
                        members.c.conversation_id == conversation_id,
                        members.c.user_id == new_owner,
                    )
                    .values(role=Role.OWNER.value)
                )

    async def list_for(
        self, user_id: str, *, cursor: str | None, limit: int
    ) -> tuple[list[Summary], str | None]:
        """Keyset pagination on (last activity, id), newest first."""
        c, m = conversations, members
        query = (
            select(c.c.id, c.c.last_activity_at, c.c.last_seq, m.c.last_read_seq)
            .join(m, m.c.conversation_id == c.c.id)
            .where(m.c.user_id == user_id)
            .order_by(c.c.last_activity_at.desc(), c.c.id.desc())
            .limit(limit + 1)
        )
        if cursor is not None:
            at, conv_id = _decode_cursor(cursor)
            query = query.where(
                or_(
                    c.c.last_activity_at < at,
                    and_(c.c.last_activity_at == at, c.c.id < conv_id),
                )
            )
        async with self._engine.connect() as conn:
            page = list(await conn.execute(query))
        more = len(page) > limit
        page = page[:limit]
        summaries = []
        for row in page:
            summary = await self._summary(user_id, row.id, row.last_seq, row.last_read_seq)
            if summary is not None:
                summaries.append(summary)
        next_cursor = _encode_cursor(page[-1].last_activity_at, page[-1].id) if more else None
        return summaries, next_cursor

    async def ids_for(self, user_id: str, *, limit: int) -> list[str]:
        """One query on the membership index: no summaries, no members."""
        async with self._reader.connect() as conn:
            rows = await conn.execute(_IDS_FOR, {"user_id": user_id, "limit": limit})
            return [str(row.id) for row in rows]

    async def _summary(
        self, user_id: str, conversation_id: str, last_seq: int, marker: int
    ) -> Summary | None:
        conv = await self.get(conversation_id)
        if conv is None:
            return None
        async with self._engine.connect() as conn:
            last = (
                await conn.execute(
                    select(messages).where(
                        messages.c.conversation_id == conversation_id,
                        messages.c.seq == last_seq,
                    )
                )
            ).first()
            unread = await conn.scalar(
                select(func.count()).where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.seq > marker,
                    messages.c.sender_id != user_id,
                    messages.c.deleted.is_(False),
                )
            )
        return Summary(
            conversation=conv,
            last_seq=last_seq,
            unread=int(unread or 0),
            last_message=None if last is None else message_of(last),
        )


async def _insert_members(
    conn: AsyncConnection,
    conversation_id: str,
    new: Sequence[Member],
    at: datetime | None,
    *,
    first: int,
    marker: int = 0,
) -> None:
    joined = at or datetime.now(UTC)
    await conn.execute(
        insert(members),
        [
            {
                "conversation_id": conversation_id,
                "user_id": m.user_id,
                "role": m.role.value,
                "position": first + i,
                "last_read_seq": marker,
                "joined_at": joined,
            }
            for i, m in enumerate(new)
        ],
    )


def _conversation_of(row: Any, people: list[Member]) -> Conversation:
    return Conversation(
        id=row.id,
        kind=Kind(row.kind),
        created_by=row.created_by,
        created_at=row.created_at,
        members=tuple(people),
        title=row.title,
    )


def _encode_cursor(at: datetime, conversation_id: str) -> str:
    raw = f"{at.isoformat()}|{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, conversation_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(at), conversation_id
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidError("not a cursor of this list") from e
