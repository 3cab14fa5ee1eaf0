"""Small pieces every SQL store of the service shares: timestamps and insert-if-absent."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Table, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection


def aware(value: datetime) -> datetime:
    """A UTC-aware datetime (SQLite hands back naive ones for timezone columns)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def insert_if_absent(conn: AsyncConnection, table: Table, row: dict[str, object]) -> bool:
    """Insert ``row`` unless a row with the same primary key exists; whether it was inserted.

    Portable across SQLite and PostgreSQL: look first, and treat a concurrent insert that wins
    the race (IntegrityError inside a savepoint) as "already there".
    """
    match = [col == row[col.name] for col in table.primary_key.columns]
    if await conn.scalar(select(exists().where(*match))):
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(table.insert().values(**row))
    except IntegrityError:
        return False
    return True
