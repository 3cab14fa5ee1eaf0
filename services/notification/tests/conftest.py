"""Fixtures of the notification service's tests: databases, a Redis client, the service itself."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest

from contracts import chat
from contracts.base import utcnow
from notification.bootstrap import MIGRATIONS, Service, assemble
from notification.config import Settings
from shared.bus import ConsumerSettings, Publisher
from shared.redis.client import AnyRedis, RedisSettings, create_client
from shared.service.database import Database

WEBHOOK_SECRET = "test-webhook-secret"
T = TypeVar("T")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A fresh, migrated database of the service (SQLite, then PostgreSQL)."""
    db = Database(database_url)
    await db.migrate(MIGRATIONS)
    yield db
    await db.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[AnyRedis]:
    """A cluster client on the test cluster."""
    client = await create_client(RedisSettings(url=redis_url, cluster=True))
    yield client
    await client.aclose()


FAST = ConsumerSettings(batch=32, block_ms=50, lease_ttl=3.0, backoff_base=0.02, backoff_max=0.2)


@pytest.fixture
async def service(redis: AnyRedis, database: Database) -> AsyncIterator[Service]:
    """The whole service, consuming from the test cluster, with quick webhook retries."""
    settings = Settings(
        webhook_secret=WEBHOOK_SECRET,  # type: ignore[arg-type]
        webhook_attempts=3,
        webhook_backoff_base=0.05,
        webhook_backoff_max=0.2,
        webhook_timeout=1.0,
        # The receivers of the tests listen on 127.0.0.1 over http.
        webhook_dev_allow_http=True,
        webhook_dev_allowed_networks=["127.0.0.1/32"],  # type: ignore[list-item]
        coalesce_window=60.0,
        instance=f"test-{secrets.token_hex(4)}",
    )
    svc = assemble(redis, database.engine, settings, consumer_settings=FAST)
    await svc.start()
    yield svc
    await svc.stop()


@pytest.fixture
async def chat_publisher(redis: AnyRedis) -> AsyncIterator[Publisher]:
    """Publishes as the chat service would."""
    publisher = Publisher(redis, producer="chat")
    yield publisher
    await publisher.aclose()


@pytest.fixture
async def user_publisher(redis: AnyRedis) -> AsyncIterator[Publisher]:
    """Publishes as the user service would."""
    publisher = Publisher(redis, producer="user")
    yield publisher
    await publisher.aclose()


async def _eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline, not an I/O timeout
) -> T:
    """Poll ``probe`` until ``until`` holds; fail with the last value after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.05)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """``await eventually(probe, until)``: poll until a condition holds (or fail)."""
    return _eventually


class ChatFacts:
    """Publishes chat events as the chat service would; ids are random per test."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._seq: dict[str, int] = {}

    async def conversation(self, creator: str, *others: str) -> str:
        """A new group conversation with these members."""
        conversation_id = f"c-{secrets.token_hex(6)}"
        await self._publisher.publish(
            chat.ConversationCreated(
                conversation_id=conversation_id,
                kind="group",
                creator_id=creator,
                member_ids=[creator, *others],
            )
        )
        return conversation_id

    def posted(
        self, conversation_id: str, sender: str, body: str, *, mentions: list[str] | None = None
    ) -> chat.MessagePosted:
        """The event of the conversation's next message."""
        seq = self._seq[conversation_id] = self._seq.get(conversation_id, 0) + 1
        return chat.MessagePosted(
            conversation_id=conversation_id,
            message=chat.ChatMessage(
                id=f"m-{secrets.token_hex(6)}",
                conversation_id=conversation_id,
                seq=seq,
                sender_id=sender,
                body=body,
                client_msg_id=secrets.token_hex(6),
                created_at=utcnow(),
                mentions=mentions or [],
            ),
        )

    async def post(
        self, conversation_id: str, sender: str, body: str, *, mentions: list[str] | None = None
    ) -> chat.MessagePosted:
        """Publish the conversation's next message."""
        event = self.posted(conversation_id, sender, body, mentions=mentions)
        await self._publisher.publish(event)
        return event

    async def join(self, conversation_id: str, user_id: str, *, added_by: str | None) -> None:
        """A member joins (added by someone, or by themselves)."""
        await self._publisher.publish(
            chat.MemberAdded(conversation_id=conversation_id, user_id=user_id, added_by=added_by)
        )

    async def leave(self, conversation_id: str, user_id: str) -> None:
        """A member leaves (or is removed)."""
        await self._publisher.publish(
            chat.MemberRemoved(conversation_id=conversation_id, user_id=user_id)
        )

    async def read(self, conversation_id: str, user_id: str, seq: int) -> None:
        """A member read the conversation up to ``seq``."""
        await self._publisher.publish(
            chat.ReadUpdated(conversation_id=conversation_id, user_id=user_id, seq=seq)
        )


@pytest.fixture
def chat_facts(chat_publisher: Publisher) -> ChatFacts:
    """Chat events for the test."""
    return ChatFacts(chat_publisher)


def new_user() -> str:
    """A random user id."""
    return f"u-{secrets.token_hex(6)}"


@pytest.fixture
def user_ids() -> Callable[[int], list[str]]:
    """``user_ids(n)``: n random user ids."""
    return lambda n: [new_user() for _ in range(n)]


@dataclass
class WebhookServer:
    """A real local HTTP endpoint: answers 503 to the first ``fail_first`` requests."""

    url: str
    fail_first: int = 0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    """``http.server`` on a free port in a thread."""
    state = WebhookServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append((dict(self.headers.items()), body))
            status = 503 if len(state.requests) <= state.fail_first else 204
            state.statuses.append(status)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
