"""Contacts and blocks in SQL; a change's events go into the outbox in its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.outbox import Outbox, Staged
from user.store.sql_rows import insert_if_absent
from user.store.tables import blocks, contacts


class SqlRelationshipStore:
    """:class:`~user.store.protocols.RelationshipStore` on the service's database."""

    def __init__(self, engine: AsyncEngine, outbox: Outbox) -> None:
        self._engine = engine
        self._outbox = outbox
        # A list is one statement: on PostgreSQL it is read in autocommit, one round trip
        # instead of three (BEGIN, the query, ROLLBACK).
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )

    async def add_contact(
        self, user_id: str, contact_id: str, *, at: datetime, events: Sequence[Staged] = ()
    ) -> bool:
        """See RelationshipStore.add_contact."""
        row = {"user_id": user_id, "contact_id": contact_id, "created_at": at}
        return await self._insert(contacts, row, events)

    async def remove_contact(
        self, user_id: str, contact_id: str, *, events: Sequence[Staged] = ()
    ) -> bool:
        """See RelationshipStore.remove_contact."""
        return await self._delete(contacts, user_id, contacts.c.contact_id == contact_id, events)

    async def contacts(self, user_id: str) -> list[str]:
        """See RelationshipStore.contacts."""
        query = (
            select(contacts.c.contact_id)
            .where(contacts.c.user_id == user_id)
            .order_by(contacts.c.created_at, contacts.c.contact_id)
        )
        return await self._ids(query)

    async def watchers(self, user_id: str) -> list[str]:
        """See RelationshipStore.watchers."""
        query = (
            select(contacts.c.user_id)
            .where(contacts.c.contact_id == user_id)
            .order_by(contacts.c.user_id)
        )
        return await self._ids(query)

    async def block(
        self, user_id: str, blocked_id: str, *, at: datetime, events: Sequence[Staged] = ()
    ) -> bool:
        """See RelationshipStore.block."""
        row = {"user_id": user_id, "blocked_id": blocked_id, "created_at": at}
        return await self._insert(blocks, row, events)

    async def unblock(
        self, user_id: str, blocked_id: str, *, events: Sequence[Staged] = ()
    ) -> bool:
        """See RelationshipStore.unblock."""
        return await self._delete(blocks, user_id, blocks.c.blocked_id == blocked_id, events)

    async def blocks(self, user_id: str) -> list[str]:
        """See RelationshipStore.blocks."""
        query = (
            select(blocks.c.blocked_id)
            .where(blocks.c.user_id == user_id)
            .order_by(blocks.c.created_at, blocks.c.blocked_id)
        )
        return await self._ids(query)

    async def blocked_by(self, user_id: str) -> list[str]:
        """See RelationshipStore.blocked_by."""
        query = select(blocks.c.user_id).where(blocks.c.blocked_id == user_id)
        query = query.order_by(blocks.c.user_id)
        return await self._ids(query)

    async def _insert(self, table: Table, row: dict[str, object], events: Sequence[Staged]) -> bool:
        async with self._engine.begin() as conn:
            if not await insert_if_absent(conn, table, row):
                return False
            await self._outbox.write(conn, events)
            return True

    async def _delete(
        self, table: Table, user_id: str, match: object, events: Sequence[Staged]
    ) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(table).where(table.c.user_id == user_id).where(match)  # type: ignore[arg-type]
            )
            if not result.rowcount:
                return False
            await self._outbox.write(conn, events)
            return True

    async def _ids(self, query: object) -> list[str]:
        async with self._reader.connect() as conn:
            return [str(v) for v in (await conn.scalars(query)).all()]  # type: ignore[call-overload]
