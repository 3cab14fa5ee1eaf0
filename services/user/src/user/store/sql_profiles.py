"""Profiles in SQL, with the processed-message inbox and the outbox in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.outbox import Outbox, Staged
from user.domain.profiles import Profile
from user.store.sql_rows import aware, insert_if_absent
from user.store.tables import processed_messages, profiles


class SqlProfileStore:
    """:class:`~user.store.protocols.ProfileStore` on the service's database."""

    def __init__(self, engine: AsyncEngine, outbox: Outbox) -> None:
        self._engine = engine
        self._outbox = outbox

    async def create(
        self, profile: Profile, *, message_id: str, events: Sequence[Staged] = ()
    ) -> bool:
        """See ProfileStore.create."""
        async with self._engine.begin() as conn:
            if not await insert_if_absent(conn, processed_messages, {"message_id": message_id}):
                return False
            if not await insert_if_absent(conn, profiles, _row(profile)):
                return False
            await self._outbox.write(conn, events)
            return True

    async def get(self, user_id: str) -> Profile | None:
        """See ProfileStore.get."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(profiles).where(profiles.c.user_id == user_id))
            ).first()
        return None if row is None else _profile(row._mapping)

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, Profile]:
        """See ProfileStore.get_many."""
        if not user_ids:
            return {}
        query = select(profiles).where(profiles.c.user_id.in_(list(dict.fromkeys(user_ids))))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.user_id: _profile(row._mapping) for row in rows}

    async def save(self, profile: Profile, *, events: Sequence[Staged] = ()) -> None:
        """See ProfileStore.save."""
        values = _row(profile)
        del values["user_id"], values["created_at"]
        async with self._engine.begin() as conn:
            await conn.execute(
                profiles.update().where(profiles.c.user_id == profile.user_id).values(**values)
            )
            await self._outbox.write(conn, events)

    async def search(self, prefix: str, *, limit: int) -> list[Profile]:
        """See ProfileStore.search."""
        # A range instead of LIKE: no wildcard escaping, and it uses the unique index everywhere.
        query = (
            select(profiles)
            .where(profiles.c.username_lower >= prefix)
            .where(profiles.c.username_lower < prefix + "\U0010ffff")
            .order_by(profiles.c.username_lower)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_profile(row._mapping) for row in rows]


def _row(profile: Profile) -> dict[str, Any]:
    return {
        "user_id": profile.user_id,
        "username": profile.username,
        "username_lower": profile.username.lower(),
        "display_name": profile.display_name,
        "avatar_url": profile.avatar_url,
        "bio": profile.bio,
        "time_zone": profile.time_zone,
        "created_at": profile.created_at,
        "updated_at": profile.updated_at,
    }


def _profile(row: Any) -> Profile:
    return Profile(
        user_id=row["user_id"],
        username=row["username"],
        display_name=row["display_name"],
        avatar_url=row["avatar_url"],
        bio=row["bio"],
        time_zone=row["time_zone"],
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
    )
