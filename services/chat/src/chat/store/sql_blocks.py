"""The local copy of user blocks, fed by ``user.events``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from chat.store.tables import blocks


class SqlBlocks:
    """The :class:`~chat.store.protocols.BlockStore` on the service's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def block(self, blocker_id: str, blocked_id: str) -> None:
        """Insert the pair; a duplicate (a redelivered event) changes nothing."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    blocks.insert().values(
                        blocker_id=blocker_id, blocked_id=blocked_id, since=datetime.now(UTC)
                    )
                )
        except IntegrityError:
            return

    async def unblock(self, blocker_id: str, blocked_id: str) -> None:
        """Delete the pair if present."""
        async with self._engine.begin() as conn:
            await conn.execute(
                blocks.delete().where(
                    blocks.c.blocker_id == blocker_id, blocks.c.blocked_id == blocked_id
                )
            )

    async def blocked_between(self, a: str, b: str) -> bool:
        """Either direction counts."""
        query = select(
            exists().where(
                or_(
                    and_(blocks.c.blocker_id == a, blocks.c.blocked_id == b),
                    and_(blocks.c.blocker_id == b, blocks.c.blocked_id == a),
                )
            )
        )
        async with self._engine.connect() as conn:
            return bool(await conn.scalar(query))

    async def blockers_of(self, blocked_id: str, among: list[str]) -> list[str]:
        """See BlockStore.blockers_of."""
        if not among:
            return []
        query = select(blocks.c.blocker_id).where(
            blocks.c.blocked_id == blocked_id, blocks.c.blocker_id.in_(among)
        )
        async with self._engine.connect() as conn:
            return sorted((await conn.scalars(query)).all())
