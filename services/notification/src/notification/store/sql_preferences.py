"""SQL queries on preferences and the local projections (membership, blocks) of a unit of work.

A mixin of :class:`notification.store.sql_notifications.SqlUnit`, kept apart to keep modules short.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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

# Users per IN (...) list: well under SQLite's bound on bound parameters (32,766; 999 before 3.32).
_CHUNK = 500


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
        return (await self.audiences([user_id]))[user_id]

    async def audiences(self, user_ids: Sequence[str]) -> dict[str, Audience]:
        """Audiences of ``user_ids``: three set-based queries per chunk, not three per user."""
        out: dict[str, Audience] = {}
        unique = list(dict.fromkeys(user_ids))
        for i in range(0, len(unique), _CHUNK):
            out.update(await self._audiences(unique[i : i + _CHUNK]))
        return out

    async def _audiences(self, user_ids: list[str]) -> dict[str, Audience]:
        settings: dict[str, UserSettings] = {}
        us = user_settings.c
        for row in await self._conn.execute(select(user_settings).where(us.user_id.in_(user_ids))):
            settings[row.user_id] = UserSettings(
                level=row.level,
                dnd_start=parse_clock(row.dnd_start) if row.dnd_start else None,
                dnd_end=parse_clock(row.dnd_end) if row.dnd_end else None,
                time_zone=row.time_zone,
                webhook_url=row.webhook_url,
            )
        cs = conversation_settings.c
        overrides: dict[str, dict[str, ConversationSettings]] = {}
        for r in await self._conn.execute(
            select(conversation_settings).where(cs.user_id.in_(user_ids))
        ):
            overrides.setdefault(r.user_id, {})[r.conversation_id] = ConversationSettings(
                muted_until=aware(r.muted_until) if r.muted_until else None, level=r.level
            )
        blocked: dict[str, set[str]] = {}
        ub = user_blocks.c
        for r in await self._conn.execute(
            select(ub.user_id, ub.blocked_id).where(ub.user_id.in_(user_ids))
        ):
            blocked.setdefault(r.user_id, set()).add(r.blocked_id)
        return {
            u: Audience(
                settings=settings.get(u, UserSettings()),
                conversations=overrides.get(u, {}),
                blocked=frozenset(blocked.get(u, ())),
            )
            for u in user_ids
        }

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
