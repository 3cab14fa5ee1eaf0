"""Webhook attacks against real local receivers (127.0.0.1 only): the SSRF guard at set time and
at delivery time, pinned connections, redirects, endless answers, and per-user secrets."""

from __future__ import annotations

import ipaddress
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgspec
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from contracts.notification import UpdateNotificationPreferences
from notification.bootstrap import assemble
from notification.channels.destinations import WebhookGuard
from notification.channels.webhook import WebhookChannel
from notification.channels.webhook_secrets import WebhookSecrets, sealing_keyring
from notification.config import Settings
from notification.domain.delivery import DeliveryJob
from notification.domain.errors import DeliveryFailedError, InvalidPreferencesError
from notification.domain.notifications import Notification
from notification.domain.webhooks import WebhookPolicy
from notification.store.sql_webhook_secrets import SqlWebhookSecrets
from notification.store.tables import webhook_secrets
from shared import tracing
from shared.redis.client import AnyRedis
from shared.service.database import Database

pytestmark = pytest.mark.integration

ATTACKS = [
    "http://127.0.0.1:9090/-/quit",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[::1]:6379/",
    "http://10.0.0.1/",
    "https://127.0.0.1:9090/-/quit",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]:6379/",
    "https://10.0.0.1/",
    "https://192.168.1.1/",
    "https://[::ffff:127.0.0.1]/",
    "https://0.0.0.0/",
    "https://224.0.0.1/",
    "https://[fe80::1]/",
    "https://user:pw@example.com/",
    "ftp://example.com/",
]


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1; ``answer`` decides each response."""

    url: str = ""
    port: int = 0
    answer: str = "ok"  # ok | redirect | endless
    redirect_to: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    endless_stopped: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Two receivers (one to redirect to the other)."""
    made: list[tuple[Receiver, ThreadingHTTPServer]] = []
    for _ in range(2):
        state = Receiver()

        class Handler(BaseHTTPRequestHandler):
            receiver = state

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.receiver.requests.append((dict(self.headers.items()), body))
                if self.receiver.answer == "redirect":
                    self.send_response(302)
                    self.send_header("Location", self.receiver.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.receiver.answer == "endless":
                    self._endless()
                else:
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def _endless(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()  # no length: the body ends when the connection does
                try:
                    for _ in range(1_000_000):  # ~64 GB: never reached by a capped reader
                        self.wfile.write(b"x" * 65536)
                except OSError:
                    pass
                finally:
                    self.receiver.endless_stopped.set()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        state.port = int(server.server_address[1])
        state.url = f"http://127.0.0.1:{state.port}/hook"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append((state, server))
    yield [state for state, _ in made]
    for _, server in made:
        server.shutdown()
        server.server_close()


class NameResolver:
    """Resolves made-up names to loopback (no DNS query leaves the machine); records calls."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"unknown test name {host}")
        return list(self.names[host])


def job(user_id: str, url: str) -> DeliveryJob:
    now = datetime.now(UTC)
    notification = Notification(
        id=f"n-{secrets.token_hex(4)}",
        user_id=user_id,
        kind="message",
        conversation_id="c1",
        seq=1,
        sender_id="alice",
        preview="ping",
        created_at=now,
        updated_at=now,
    )
    return DeliveryJob(notification=notification, channel="webhook", webhook_url=url)


DEV = WebhookPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


def recording_client(sent: list[httpx.Request]) -> httpx.AsyncClient:
    """An HTTP client that records what it would send and sends nothing."""

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    return httpx.AsyncClient(transport=httpx.MockTransport(record))


def channel(guard: WebhookGuard, key: bytes | None, **kw: Any) -> WebhookChannel:
    async def key_of(_: str) -> bytes | None:
        return key

    return WebhookChannel(
        guard=guard, key_of=key_of, attempts=2, backoff_base=0.01, timeout=5.0, **kw
    )


async def test_attack_urls_are_refused_when_set_and_nothing_is_connected(
    redis: AnyRedis, database: Database, receivers: list[Receiver]
) -> None:
    # The production policy: no http, no internal network let through.
    settings = Settings(
        webhook_secret="master",  # type: ignore[arg-type]
        instance=f"test-{secrets.token_hex(4)}",
    )
    service = assemble(redis, database.engine, settings)
    user = f"u-{secrets.token_hex(4)}"
    local = receivers[0]
    names = [f"http://localhost:{local.port}/hook", f"https://localhost:{local.port}/hook"]
    for url in [*ATTACKS, *names]:
        with pytest.raises(InvalidPreferencesError) as refused:
            await service.handlers.preferences.update(
                UpdateNotificationPreferences(user_id=user, webhook_url=url)
            )
        assert refused.value.field == "webhook_url", url
    assert local.requests == []  # localhost resolved to loopback: refused before connecting
    kept = await service.handlers.preferences.get(user)
    assert kept.webhook_url is None and kept.webhook_secret is None
    await service.webhook.aclose()


async def test_literal_addresses_are_judged_without_resolving_or_connecting() -> None:
    resolver = NameResolver({})
    sent: list[httpx.Request] = []
    client = recording_client(sent)
    webhook = channel(WebhookGuard(WebhookPolicy(), resolver=resolver), b"k" * 32, client=client)
    for url in ATTACKS:
        with pytest.raises(DeliveryFailedError, match=r"refused destination"):
            await webhook.send(job("bob", url))
    assert resolver.asked == [] and sent == []


async def test_a_name_that_resolves_inside_at_delivery_is_refused_there(
    receivers: list[Receiver],
) -> None:
    # DNS rebinding: public when the webhook was set, loopback when the delivery runs.
    resolver = NameResolver({"hooks.example.test": ["93.184.215.14"]})
    guard = WebhookGuard(WebhookPolicy(allow_http=True), resolver=resolver)
    await guard.destination("http://hooks.example.test/hook")  # accepted at set time
    resolver.names["hooks.example.test"] = ["127.0.0.1"]
    sent: list[httpx.Request] = []
    client = recording_client(sent)
    with pytest.raises(DeliveryFailedError, match="loopback"):
        await channel(guard, b"k" * 32, client=client).send(
            job("bob", "http://hooks.example.test/hook")
        )
    assert sent == []
    # A name with one internal address among public ones is refused as well.
    resolver.names["hooks.example.test"] = ["93.184.215.14", "10.1.2.3"]
    with pytest.raises(DeliveryFailedError, match="private"):
        await channel(guard, b"k" * 32, client=client).send(
            job("bob", "http://hooks.example.test/hook")
        )
    assert sent == []


async def test_a_delivery_goes_to_the_checked_address_with_the_original_host_and_verifies(
    database: Database, receivers: list[Receiver]
) -> None:
    local = receivers[0]
    resolver = NameResolver({"hooks.example.test": ["127.0.0.1"]})
    guard = WebhookGuard(DEV, resolver=resolver)
    secrets_ = WebhookSecrets(
        store=SqlWebhookSecrets(database.engine), keyring=sealing_keyring(b"master"), guard=guard
    )
    user = f"u-{secrets.token_hex(4)}"
    shown = await secrets_.issue_secret(user)
    async with database.engine.connect() as conn:
        row = select(webhook_secrets.c.sealed).where(webhook_secrets.c.user_id == user)
        sealed = await conn.scalar(row)
    key = await secrets_.key_of(user)
    assert key is not None and sealed is not None and key not in bytes(sealed)  # sealed at rest
    url = f"http://hooks.example.test:{local.port}/hook"
    webhook = WebhookChannel(guard=guard, key_of=secrets_.key_of, attempts=1)
    sent = job(user, url)
    assert await webhook.send(sent) == 1
    headers, body = local.requests[-1]
    assert headers["Host"] == f"hooks.example.test:{local.port}"
    payload = Webhook(shown).verify(body, {k.lower(): v for k, v in headers.items()})
    assert payload["notification"]["id"] == sent.notification.id
    # A rotated secret replaces the old one: the old secret no longer verifies.
    rotated = await secrets_.issue_secret(user)
    assert await webhook.send(job(user, url)) == 1
    headers, body = local.requests[-1]
    Webhook(rotated).verify(body, {k.lower(): v for k, v in headers.items()})
    with pytest.raises(Exception, match="signature"):
        Webhook(shown).verify(body, {k.lower(): v for k, v in headers.items()})
    await webhook.aclose()


async def test_a_redirect_is_not_followed(receivers: list[Receiver]) -> None:
    first, second = receivers
    first.answer, first.redirect_to = "redirect", second.url
    webhook = channel(WebhookGuard(DEV), b"k" * 32)
    with pytest.raises(DeliveryFailedError, match="redirects are not followed") as failed:
        await webhook.send(job("bob", first.url))
    assert failed.value.attempts == 1  # final: retrying cannot change it
    assert len(first.requests) == 1 and second.requests == []
    await webhook.aclose()


async def test_an_endless_answer_is_read_only_up_to_the_cap(receivers: list[Receiver]) -> None:
    local = receivers[0]
    local.answer = "endless"
    webhook = channel(WebhookGuard(DEV), b"k" * 32, max_response=256 * 1024)
    assert await webhook.send(job("bob", local.url)) == 1
    assert local.endless_stopped.wait(timeout=30)  # we closed the connection: it stopped writing
    await webhook.aclose()
    assert msgspec.json.decode(local.requests[0][1])["type"] == "notification.created"


async def test_the_secret_is_shown_once_rotated_on_demand_and_forgotten_with_the_webhook(
    service: Any, receivers: list[Receiver]
) -> None:
    prefs = service.handlers.preferences
    user = f"u-{secrets.token_hex(4)}"
    url = receivers[0].url
    with pytest.raises(InvalidPreferencesError, match="no webhook"):
        await prefs.update(UpdateNotificationPreferences(user_id=user, rotate_webhook_secret=True))
    first = await prefs.update(UpdateNotificationPreferences(user_id=user, webhook_url=url))
    assert first.webhook_secret is not None and first.webhook_secret.startswith("whsec_")
    read = await prefs.get(user)
    assert read.webhook_url == url and read.webhook_secret is None  # never readable later
    other = await prefs.update(UpdateNotificationPreferences(user_id=user, level="mentions"))
    assert other.webhook_secret is None  # other changes do not issue one
    rotated = await prefs.update(
        UpdateNotificationPreferences(user_id=user, rotate_webhook_secret=True)
    )
    assert rotated.webhook_secret not in (None, first.webhook_secret)
    cleared = await prefs.update(UpdateNotificationPreferences(user_id=user, clear_webhook=True))
    assert cleared.webhook_url is None and cleared.webhook_secret is None
    again = await prefs.update(UpdateNotificationPreferences(user_id=user, webhook_url=url))
    assert again.webhook_secret not in (None, first.webhook_secret, rotated.webhook_secret)


async def test_a_host_that_does_not_resolve_at_delivery_is_retried_not_refused_at_once() -> None:
    resolver = NameResolver({})
    sent: list[httpx.Request] = []
    guard = WebhookGuard(DEV, resolver=resolver)
    webhook = channel(guard, b"k" * 32, client=recording_client(sent))
    with pytest.raises(DeliveryFailedError, match="gave up after 2 attempts") as failed:
        await webhook.send(job("bob", "http://gone.example.test/hook"))
    assert failed.value.attempts == 2 and resolver.asked == ["gone.example.test"] * 2
    assert sent == []


async def test_with_tracing_on_a_delivery_is_a_client_span_whose_traceparent_the_receiver_gets(
    receivers: list[Receiver],
) -> None:
    spans = InMemorySpanExporter()
    tracing.configure("notification", exporter=spans)
    try:
        webhook = channel(WebhookGuard(DEV), b"k" * 32)
        with tracing.span("process chat.message_posted", kind="consumer"):
            assert await webhook.send(job("bob", receivers[0].url)) == 1
        await webhook.aclose()
    finally:
        tracing.shutdown()
    post, parent = spans.get_finished_spans()
    assert post.name == "POST webhook" and post.parent is not None
    assert post.parent.span_id == parent.context.span_id
    assert post.attributes is not None
    assert post.attributes["http.response.status_code"] == 204
    assert post.attributes["server.address"] == f"127.0.0.1:{receivers[0].port}"
    headers, _ = receivers[0].requests[0]
    assert headers["traceparent"].split("-")[2] == f"{post.context.span_id:016x}"
