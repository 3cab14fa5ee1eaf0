"""Signing-key rotation across instances, on the test cluster with SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from auth.bootstrap import wire
from auth.store.tables import outbox
from contracts import auth as wire_auth
from shared.bus.testing import RefusingPublisher
from shared.outbox import pending_entries
from shared.redis.client import AnyRedis
from shared.service.database import Database

from .conftest import fast_settings

pytestmark = pytest.mark.integration


async def test_instances_starting_together_rotate_the_signing_key_once(
    redis: AnyRedis, database: Database
) -> None:
    settings = fast_settings()
    publisher = RefusingPublisher(redis, producer="auth")  # the events stay in the outbox, counted
    instances = [wire(redis, database.engine, settings, publisher=publisher) for _ in range(4)]

    await asyncio.gather(*(parts.keys.ensure_active() for parts in instances))

    active = {parts.keys.active().kid for parts in instances}
    assert len(active) == 1  # every instance signs with the same key
    written = await pending_entries(database.engine, outbox)
    assert [s.envelope.type for s in written] == [wire_auth.SigningKeysRotated.TYPE]
    for parts in instances:
        await parts.outbox.stop()
