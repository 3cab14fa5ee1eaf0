"""Delivery on the real cluster: in-app, log, and a webhook that is down or comes back."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from standardwebhooks.webhooks import Webhook

from contracts import codec
from contracts.notification import UpdateNotificationPreferences
from notification.bootstrap import Service
from notification.store.redis_delivery import DeliveryRequested
from notification.store.sql_notifications import delivery_rows
from shared.bus import DeadLetters, admin
from shared.redis.client import AnyRedis
from shared.service.database import Database

pytestmark = pytest.mark.integration


async def notify_bob_with_webhook(
    service: Service, chat_facts: Any, user_ids: Any, eventually: Any, url: str
) -> tuple[str, str]:
    """Bob sets the webhook and gets a notification: (its id, the secret shown to Bob)."""
    alice, bob = user_ids(2)
    shown = await service.handlers.preferences.update(
        UpdateNotificationPreferences(user_id=bob, webhook_url=url)
    )
    assert shown.webhook_secret is not None and shown.webhook_secret.startswith("whsec_")
    conversation = await chat_facts.conversation(alice, bob)
    await chat_facts.post(conversation, alice, "ping")

    async def ids() -> list[str]:
        from contracts.notification import ListNotifications

        page = await service.handlers.reading.list_notifications(ListNotifications(user_id=bob))
        return [n.id for n in page.items]

    found = await eventually(ids, lambda items: len(items) == 1)
    return str(found[0]), shown.webhook_secret


async def dead_letters_of(redis: AnyRedis, notification_id: str) -> list[dict[bytes, bytes]]:
    # As `parley events dlq list notification.delivery` finds them: the registry knows the stream.
    entries = await DeadLetters(redis, admin.spec_of("notification.delivery")).entries(count=10_000)
    out = []
    for _, fields in entries:
        job = codec.decode(DeliveryRequested, fields[b"p"])
        if job.notification.id == notification_id:
            out.append(fields)
    return out


async def test_a_webhook_endpoint_that_is_down_gets_retries_then_a_dead_letter(
    service: Service,
    redis: AnyRedis,
    database: Database,
    chat_facts: Any,
    user_ids: Any,
    eventually: Any,
    webhook_server: Any,
) -> None:
    webhook_server.fail_first = 1_000
    nid, _ = await notify_bob_with_webhook(
        service, chat_facts, user_ids, eventually, webhook_server.url
    )
    rows = await eventually(
        lambda: delivery_rows(database.engine, nid),
        lambda r: r.get("webhook", ("", 0))[0] == "dead_lettered",
    )
    assert rows["webhook"] == ("dead_lettered", 3)
    assert webhook_server.statuses == [503, 503, 503]
    # The in-app announcement is not queued, so it has no outcome row; the log channel has one.
    assert "in_app" not in rows and rows["log"] == ("delivered", 1)
    letters = await eventually(lambda: dead_letters_of(redis, nid), lambda d: len(d) == 1)
    assert b"HTTP 503" in letters[0][b"dlq.error"]


async def test_a_webhook_endpoint_that_comes_back_gets_the_signed_delivery(
    service: Service,
    redis: AnyRedis,
    database: Database,
    chat_facts: Any,
    user_ids: Any,
    eventually: Any,
    webhook_server: Any,
) -> None:
    webhook_server.fail_first = 2
    nid, secret = await notify_bob_with_webhook(
        service, chat_facts, user_ids, eventually, webhook_server.url
    )
    rows = await eventually(
        lambda: delivery_rows(database.engine, nid),
        lambda r: r.get("webhook", ("", 0))[0] == "delivered",
    )
    assert rows["webhook"] == ("delivered", 3)
    assert webhook_server.statuses == [503, 503, 204]
    headers, body = webhook_server.requests[-1]
    # The reference implementation of Standard Webhooks verifies it with the secret shown once.
    Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
    assert headers["webhook-id"] == f"{nid}.1"
    ids = {h["webhook-id"] for h, _ in webhook_server.requests}
    assert ids == {f"{nid}.1"}  # retries keep the id, so a receiver drops a duplicate
    assert msgspec.json.decode(body)["notification"]["preview"] == "ping"
    assert await dead_letters_of(redis, nid) == []
