"""Accounts in SQL (SQLite or PostgreSQL), inside a unit of work's connection."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.domain.accounts import Account, normalize_username
from auth.domain.errors import UsernameTaken
from auth.store.tables import accounts


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were written in UTC, so say so."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _account(row: Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        user_id=m["user_id"],
        username=m["username"],
        password_hash=m["password_hash"],
        roles=tuple(r for r in str(m["roles"]).split(",") if r),
        created_at=as_utc(m["created_at"]),
        password_changed_at=as_utc(m["password_changed_at"]),
    )


class SqlAccounts:
    """The account repository on one connection (transaction owned by the unit of work)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, account: Account) -> None:
        """Insert; a duplicate normalized username raises UsernameTaken."""
        try:
            # A savepoint keeps the unit of work usable after a constraint violation.
            async with self._conn.begin_nested():
                await self._conn.execute(
                    insert(accounts).values(
                        user_id=account.user_id,
                        username=account.username,
                        username_key=account.username_key,
                        password_hash=account.password_hash,
                        roles=",".join(account.roles),
                        created_at=account.created_at,
                        password_changed_at=account.password_changed_at,
                    )
                )
        except IntegrityError as e:
            raise UsernameTaken("this username is taken") from e

    async def by_id(self, user_id: str) -> Account | None:
        """The account with this id, if any."""
        row = (
            await self._conn.execute(select(accounts).where(accounts.c.user_id == user_id))
        ).first()
        return None if row is None else _account(row)

    async def by_username(self, username: str) -> Account | None:
        """The account with this username, compared case-insensitively."""
        query = select(accounts).where(accounts.c.username_key == normalize_username(username))
        row = (await self._conn.execute(query)).first()
        return None if row is None else _account(row)

    async def save(self, account: Account) -> None:
        """Write back hash, roles and password timestamp."""
        await self._conn.execute(
            update(accounts)
            .where(accounts.c.user_id == account.user_id)
            .values(
                password_hash=account.password_hash,
                roles=",".join(account.roles),
                password_changed_at=account.password_changed_at,
            )
        )
