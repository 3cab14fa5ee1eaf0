"""A key-encryption-key rotation: signing keys and sessions sealed under the old key still open."""

from __future__ import annotations

import uuid

import pytest

from auth.bootstrap import wire
from auth.crypto.sealing import SealingError, new_key
from auth.domain.sessions import ClientDetails
from shared.bus.testing import RefusingPublisher
from shared.redis.client import AnyRedis
from shared.service.database import Database

from .conftest import fast_settings

pytestmark = pytest.mark.integration


async def test_after_a_rotation_old_sessions_refresh_and_the_signing_key_still_signs(
    redis: AnyRedis, database: Database
) -> None:
    first, second = new_key(), new_key()
    publisher = RefusingPublisher(redis, producer="auth")  # events stay in the outbox
    before = wire(
        redis, database.engine, fast_settings(key_encryption_key=first), publisher=publisher
    )
    await before.keys.ensure_active()
    tokens = await before.commands.accounts.register(
        str(uuid.uuid4()),
        username=f"k{uuid.uuid4().hex[:10]}",
        password="correct horse battery",
        display_name="Kay",
        client=ClientDetails(),
    )

    rotated = fast_settings(key_encryption_key=second, old_key_encryption_keys=first)
    after = wire(redis, database.engine, rotated, publisher=publisher)
    await after.keys.ensure_active()  # opens the signing key sealed under the old key
    assert after.keys.active().kid == before.keys.active().kid
    renewed = await after.commands.sessions.refresh(
        tokens.refresh_token, message_id=str(uuid.uuid4())
    )
    assert renewed.session_id == tokens.session_id

    forgotten = fast_settings(key_encryption_key=second)
    without_old = wire(redis, database.engine, forgotten, publisher=publisher)
    with pytest.raises(SealingError):
        await without_old.keys.ensure_active()
    for parts in (before, after, without_old):
        await parts.outbox.stop()
