"""Messages in SQL: sequence numbers and idempotency are enforced by the database.

A post is, atomically: ``UPDATE conversations SET last_seq = last_seq + 1 ... RETURNING last_seq``
(this takes the conversation row's write lock first, so concurrent posters of one conversation
queue up there), then the insert with that number. On PostgreSQL both are one statement (the
update a data-modifying CTE the insert selects from), sent in autocommit: one round trip instead
of four (BEGIN, UPDATE, INSERT, COMMIT). SQLite has no data-modifying CTEs, so there the two run in
one transaction. A replay (same sender and client message id) breaks the unique constraint: the
statement or transaction rolls back, giving the number back, and the stored original is returned.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Update, bindparam, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat.domain.errors import NotFoundError
from chat.domain.messages import Draft, Message, window
from chat.store.tables import conversations, messages
from contracts.base import new_message_id


class SqlMessages:
    """The :class:`~chat.store.protocols.MessageStore` on the service's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._one_statement = engine.dialect.name == "postgresql"
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def append(self, draft: Draft) -> tuple[Message, bool]:
        """Store ``draft`` with the next sequence number, or return the original (replay)."""
        message = Message(
            id=new_message_id(),
            conversation_id=draft.conversation_id,
            seq=0,  # numbered below
            sender_id=draft.sender_id,
            client_msg_id=draft.client_msg_id,
            body=draft.body,
            created_at=draft.created_at,
            mentions=draft.mentions,
        )
        # A replay (same sender and client_msg_id) breaks uq_messages_client_msg_id on insert:
        # the work rolls back, giving the number back, and the original is read. No lookup
        # first: replays are rare, posts are not.
        try:
            if self._one_statement:
                async with self._autocommit.connect() as conn:
                    seq = await conn.scalar(_POST, _params(message))
            else:
                async with self._engine.begin() as conn:
                    seq = await conn.scalar(_BUMP, _params(message))
                    if seq is not None:
                        await conn.execute(
                            messages.insert().values(**_row_of(replace(message, seq=seq)))
                        )
        except IntegrityError:
            async with self._engine.connect() as conn:
                original = await _by_client_id(conn, draft)
            if original is None:
                raise
            return original, True
        if seq is None:
            raise NotFoundError(f"no conversation {draft.conversation_id}")
        return replace(message, seq=int(seq)), False

    async def get(self, conversation_id: str, seq: int) -> Message | None:
        """One message by sequence number."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(messages).where(
                        messages.c.conversation_id == conversation_id, messages.c.seq == seq
                    )
                )
            ).first()
        return None if row is None else message_of(row)

    async def save(self, message: Message) -> bool:
        """Compare-and-set on ``version``: the stored copy must be the previous version."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(messages)
                .where(
                    messages.c.conversation_id == message.conversation_id,
                    messages.c.seq == message.seq,
                    messages.c.version == message.version - 1,
                )
                .values(
                    body=message.body,
                    mentions=list(message.mentions),
                    edited_at=message.edited_at,
                    deleted=message.deleted,
                    version=message.version,
                )
            )
        return bool(result.rowcount)

    async def history(
        self, conversation_id: str, *, before: int | None, after: int | None, limit: int
    ) -> list[Message]:
        """Messages of the requested window, ascending."""
        async with self._engine.connect() as conn:
            last = await conn.scalar(
                select(conversations.c.last_seq).where(conversations.c.id == conversation_id)
            )
            span = window(last_seq=int(last or 0), before=before, after=after, limit=limit)
            return await self.range(conversation_id, span.first, span.last, conn=conn)

    async def latest(self, conversation_id: str, limit: int) -> tuple[list[Message], int]:
        """The last ``limit`` messages and the last sequence number, read in one snapshot."""
        async with self._engine.begin() as conn:
            last = int(
                await conn.scalar(
                    select(conversations.c.last_seq).where(conversations.c.id == conversation_id)
                )
                or 0
            )
            span = window(last_seq=last, before=None, after=None, limit=limit)
            return await self.range(conversation_id, span.first, span.last, conn=conn), last

    async def range(
        self, conversation_id: str, first: int, last: int, *, conn: AsyncConnection | None = None
    ) -> list[Message]:
        """Messages with ``first <= seq <= last``, ascending."""
        if first > last:
            return []
        query = (
            select(messages)
            .where(
                messages.c.conversation_id == conversation_id,
                messages.c.seq >= first,
                messages.c.seq <= last,
            )
            .order_by(messages.c.seq)
        )
        if conn is not None:
            return [message_of(r) for r in await conn.execute(query)]
        async with self._engine.connect() as own:
            return [message_of(r) for r in await own.execute(query)]


async def _by_client_id(conn: AsyncConnection, draft: Draft) -> Message | None:
    row = (
        await conn.execute(
            select(messages).where(
                messages.c.conversation_id == draft.conversation_id,
                messages.c.sender_id == draft.sender_id,
                messages.c.client_msg_id == draft.client_msg_id,
            )
        )
    ).first()
    return None if row is None else message_of(row)


# The conversation's next sequence number (``RETURNING last_seq``; no row, no number). Built
# once with bound parameters (``p_conversation_id``, ``p_created_at``: a parameter named like a
# column would be taken for a SET value by SQLAlchemy), so it is compiled once, not per post.
_BUMP: Update = (
    update(conversations)
    .where(conversations.c.id == bindparam("p_conversation_id"))
    .values(
        last_seq=conversations.c.last_seq + literal_column("1"),
        last_activity_at=bindparam("p_created_at", type_=conversations.c.last_activity_at.type),
    )
    .returning(conversations.c.last_seq)
)


def _post_statement() -> Insert:
    """``WITH bumped AS (UPDATE conversations ... RETURNING last_seq) INSERT INTO messages
    SELECT ..., bumped.last_seq, ... FROM bumped RETURNING seq``: no row if no conversation.

    Bound parameters ``p_<column>`` (``seq`` aside), as in ``_BUMP``: compiled once, a post
    only binds values (:func:`_params`)."""
    bumped = _BUMP.cte("bumped")
    names = [c.name for c in messages.c]
    values = [
        bumped.c.last_seq if name == "seq" else bindparam(f"p_{name}", type_=messages.c[name].type)
        for name in names
    ]
    return insert(messages).from_select(names, select(*values)).returning(messages.c.seq)


_POST = _post_statement()


def _params(message: Message) -> dict[str, Any]:
    """The bound parameters of ``_BUMP`` and ``_POST`` for ``message``."""
    return {f"p_{k}": v for k, v in _row_of(message).items() if k != "seq"}


def _row_of(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "client_msg_id": message.client_msg_id,
        "body": message.body,
        "mentions": list(message.mentions),
        "created_at": message.created_at,
        "edited_at": message.edited_at,
        "deleted": message.deleted,
        "version": message.version,
    }


def message_of(row: Any) -> Message:
    """A domain message from a row of ``messages``."""
    edited: datetime | None = row.edited_at
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=int(row.seq),
        sender_id=row.sender_id,
        client_msg_id=row.client_msg_id,
        body=row.body,
        created_at=row.created_at,
        mentions=tuple(row.mentions or ()),
        edited_at=edited,
        deleted=bool(row.deleted),
        version=int(row.version),
    )
