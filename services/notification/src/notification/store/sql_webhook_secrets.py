"""Sealed webhook secrets in the service's database (one per user; a new one replaces it)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from notification.store.tables import webhook_secrets


class SqlWebhookSecrets:
    """The :class:`~notification.store.protocols.WebhookSecretStore` on the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put(self, user_id: str, sealed: bytes) -> None:
        """See WebhookSecretStore.put."""
        async with self._engine.begin() as conn:
            await conn.execute(webhook_secrets.delete().where(webhook_secrets.c.user_id == user_id))
            await conn.execute(
                webhook_secrets.insert().values(
                    user_id=user_id, sealed=sealed, created_at=datetime.now(UTC)
                )
            )

    async def get(self, user_id: str) -> bytes | None:
        """See WebhookSecretStore.get."""
        query = select(webhook_secrets.c.sealed).where(webhook_secrets.c.user_id == user_id)
        async with self._engine.connect() as conn:
            found = await conn.scalar(query)
        return None if found is None else bytes(found)

    async def delete(self, user_id: str) -> None:
        """See WebhookSecretStore.delete."""
        async with self._engine.begin() as conn:
            await conn.execute(webhook_secrets.delete().where(webhook_secrets.c.user_id == user_id))
