"""SQL queries on preferences and the local projections (membership, blocks) of a unit of work.

A mixin of :class:`notification.store.sql_notifications.SqlUnit`, kept apart to keep modules short.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from notification.domain.preferences import (
    Audience,
    ConversationSettings,
    UserSettings,
    parse_clock,
)
from notification.store.tables import (
    conversation_members,
    conversation_settings,
    user_blocks,
    user_settings,
)


def aware(value: datetime) -> datetime:
    """A datetime from the database as aware UTC (SQLite hands back naive ones)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class PreferenceQueries:
    """Preferences, membership and blocks, on the unit's connection."""

    _conn: AsyncConnection

    async def members(self, conversation_id: str) -> list[str]:
        """The projected members of a conversation."""
        rows = await self._conn.execute(
            select(conversation_members.c.user_id).where(
                conversation_members.c.conversation_id == conversation_id
            )
        )
        return [r[0] for r in rows]

    async def add_members(self, conversation_id: str, user_ids: Iterable[str]) -> None:
        """Project members joining (idempotent)."""
        wanted = set(user_ids)
        present = set(await self.members(conversation_id))
        new = [{"conversation_id": conversation_id, "user_id": u} for u in wanted - present]
        if new:
            await self._conn.execute(insert(conversation_members), new)

    async def remove_member(self, conversation_id: str, user_id: str) -> None:
        """Project a member leaving."""
        c = conversation_members.c
        await self._conn.execute(
            delete(conversation_members).where(
                c.conversation_id == conversation_id, c.user_id == user_id
            )
        )

    async def set_block(self, user_id: str, blocked_id: str, *, blocked: bool) -> None:
        """Project a block placed or lifted."""
        c = user_blocks.c
        await self._conn.execute(
            delete(user_blocks).where(c.user_id == user_id, c.blocked_id == blocked_id)
        )
        if blocked:
            await self._conn.execute(
                insert(user_blocks).values(user_id=user_id, blocked_id=blocked_id)
            )

    async def audience(self, user_id: str) -> Audience:
        """Settings, conversation overrides and blocks of one user."""
        row = (
            await self._conn.execute(
                select(user_settings).where(user_settings.c.user_id == user_id)
            )
        ).first()
        settings = UserSettings()
        if row is not None:
            settings = UserSettings(
                level=row.level,
                dnd_start=parse_clock(row.dnd_start) if row.dnd_start else None,
                dnd_end=parse_clock(row.dnd_end) if row.dnd_end else None,
                time_zone=row.time_zone,
                webhook_url=row.webhook_url,
            )
        cs = conversation_settings.c
        overrides = {
            r.conversation_id: ConversationSettings(
                muted_until=aware(r.muted_until) if r.muted_until else None,
                level=r.level,
            )
            for r in await self._conn.execute(
                select(conversation_settings).where(cs.user_id == user_id)
            )
        }
        blocked = frozenset(
            r[0]
            for r in await self._conn.execute(
                select(user_blocks.c.blocked_id).where(user_blocks.c.user_id == user_id)
            )
        )
        return Audience(settings=settings, conversations=overrides, blocked=blocked)

    async def save_settings(self, user_id: str, settings: UserSettings) -> None:
        """Store a user's settings."""
        values: dict[str, Any] = {
            "level": settings.level,
            "dnd_start": settings.dnd_start.strftime("%H:%M") if settings.dnd_start else None,
            "dnd_end": settings.dnd_end.strftime("%H:%M") if settings.dnd_end else None,
            "time_zone": settings.time_zone,
            "webhook_url": settings.webhook_url,
        }
        await self._conn.execute(delete(user_settings).where(user_settings.c.user_id == user_id))
        await self._conn.execute(insert(user_settings).values(user_id=user_id, **values))

    async def save_conversation_settings(
        self, user_id: str, conversation_id: str, settings: ConversationSettings
    ) -> None:
        """Store a conversation override (dropped when it holds only defaults)."""
        cs = conversation_settings.c
        await self._conn.execute(
            delete(conversation_settings).where(
                cs.user_id == user_id, cs.conversation_id == conversation_id
            )
        )
        if settings != ConversationSettings():
            await self._conn.execute(
                insert(conversation_settings).values(
                    user_id=user_id,
                    conversation_id=conversation_id,
                    muted_until=settings.muted_until,
                    level=settings.level,
                )
            )
