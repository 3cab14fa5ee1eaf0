"""The service database engine without pre-ping: a dropped connection costs one failed statement."""

from __future__ import annotations

import os

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.service.database import Database

pytestmark = pytest.mark.integration

PG_ADMIN = os.environ.get("PARLEY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_connection_the_server_dropped_fails_once_then_the_pool_reconnects(
    database_url: str,
) -> None:
    db = Database(database_url)
    admin = await asyncpg.connect(PG_ADMIN, timeout=3)
    try:
        async with db.engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(DBAPIError) as failed:
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert failed.value.connection_invalidated
        async with db.engine.begin() as conn:  # what a retried handler does next
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await admin.close()
        await db.close()
