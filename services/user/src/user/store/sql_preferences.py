"""Preferences in SQL (one row per user who ever changed one)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.outbox import Outbox, Staged
from user.domain.preferences import Preferences
from user.store.sql_rows import insert_if_absent
from user.store.tables import preferences


class SqlPreferenceStore:
    """:class:`~user.store.protocols.PreferenceStore` on the service's database."""

    def __init__(self, engine: AsyncEngine, outbox: Outbox) -> None:
        self._engine = engine
        self._outbox = outbox

    async def get(self, user_id: str) -> Preferences | None:
        """See PreferenceStore.get."""
        query = select(preferences).where(preferences.c.user_id == user_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Preferences(
            language=row.language,
            theme=row.theme,
            notifications=row.notifications,
            notification_sound=bool(row.notification_sound),
        )

    async def save(
        self, user_id: str, prefs: Preferences, *, at: datetime, events: Sequence[Staged] = ()
    ) -> None:
        """See PreferenceStore.save."""
        values = {
            "language": prefs.language,
            "theme": prefs.theme,
            "notifications": prefs.notifications,
            "notification_sound": prefs.notification_sound,
            "updated_at": at,
        }
        async with self._engine.begin() as conn:
            if not await insert_if_absent(conn, preferences, {"user_id": user_id, **values}):
                await conn.execute(
                    preferences.update().where(preferences.c.user_id == user_id).values(**values)
                )
            await self._outbox.write(conn, events)
