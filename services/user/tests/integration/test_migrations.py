"""The user service's migrations build exactly the tables its code declares."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from user.store.tables import metadata

pytestmark = pytest.mark.integration


async def test_the_migrated_schema_matches_the_tables(engine: AsyncEngine) -> None:
    def differences(conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []
