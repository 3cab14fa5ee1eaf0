"""A real gateway (real-time + GraphQL) on uvicorn, with stand-ins for the other services.

The stand-ins are tiny bus consumers on the real cluster answering the commands the gateway's
real-time and GraphQL sides send (chat history, conversations, read, typing, profiles,
notifications) from in-memory data the test controls. Tokens are minted with a key the gateway
is told to trust, exactly as auth would sign them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI

from contracts import chat, gateway, notification, realtime, registry, user
from contracts.auth import PublicKey
from contracts.base import Envelope, ErrorCode, Message, Reply
from gateway.api.graphql import install_graphql
from gateway.api.ws import install_realtime
from gateway.bootstrap import wire
from gateway.config import Settings
from gateway.handlers.deps import GatewayDeps
from gateway.handlers.realtime_options import RealtimeOptions
from shared.bus import Consumer, ConsumerSettings, Publisher, Requester
from shared.pubsub import PubSub
from shared.service.runtime import ServiceRuntime


def uid(prefix: str = "u") -> str:
    """A fresh id."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class TokenMint:
    """Signs access tokens like auth does, with a key the gateway trusts."""

    def __init__(self) -> None:
        self.kid = uid("k")
        self._key = Ed25519PrivateKey.generate()
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        self.public = PublicKey(kid=self.kid, kty="OKP", alg="EdDSA", crv="Ed25519", x=x)

    def token(self, user_id: str, *, session_id: str | None = None, ttl: float = 600) -> str:
        """An access token of ``user_id`` expiring in ``ttl`` seconds (negative: expired)."""
        now = int(time.time())
        claims = {
            "iss": "parley-auth",
            "aud": "parley",
            "sub": user_id,
            "sid": session_id or uid("s"),
            "roles": ["user"],
            "iat": now - 60 if ttl < 0 else now,
            "exp": int(now + ttl),
            "jti": uid("j"),
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})


def message(conv: str, seq: int, *, body: str | None = None) -> chat.ChatMessage:
    """A stored message of ``conv`` with sequence ``seq``."""
    return chat.ChatMessage(
        id=f"m-{conv}-{seq}",
        conversation_id=conv,
        seq=seq,
        sender_id="someone",
        body=body or f"message {seq}",
        client_msg_id=f"c-{conv}-{seq}",
        created_at=datetime.now(UTC),
    )


@dataclass
class FakeServices:
    """In-memory chat, user and notification services answering over the real bus."""

    conversations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """User id -> the ids of their conversations."""
    messages: dict[str, list[chat.ChatMessage]] = field(default_factory=lambda: defaultdict(list))
    profiles: dict[str, user.Profile] = field(default_factory=dict)
    calls: list[Message] = field(default_factory=list)
    history_calls: int = 0
    listings: list[Message] = field(default_factory=list)
    """The conversation lists asked of chat (``ListConversations`` and ``ListConversationIds``)."""
    history_delay: float = 0.0
    """Seconds chat takes to answer a history request (frames can be published meanwhile)."""
    history_failure: ErrorCode | None = None
    """When set, every history request fails with it (chat cannot answer)."""

    def add_messages(self, conv: str, count: int) -> None:
        """Store ``count`` more messages in ``conv``."""
        start = len(self.messages[conv])
        self.messages[conv] += [message(conv, start + i + 1) for i in range(count)]

    async def history(self, cmd: chat.GetHistory, _: Envelope) -> Any:
        self.history_calls += 1
        if self.history_delay:
            await asyncio.sleep(self.history_delay)
        if self.history_failure is not None:
            return Reply.failure(self.history_failure, "chat cannot answer")
        if cmd.conversation_id not in self.conversations.get(cmd.user_id, []):
            return Reply.failure(ErrorCode.NOT_FOUND, "no such conversation")
        items = self.messages[cmd.conversation_id]
        if cmd.after is not None:
            picked = [m for m in items if m.seq > cmd.after][: cmd.limit]
        elif cmd.before is not None:
            picked = [m for m in items if m.seq < cmd.before][-cmd.limit :]
        else:
            picked = items[-cmd.limit :]
        return chat.History(items=picked)

    async def list_conversations(self, cmd: chat.ListConversations, _: Envelope) -> Any:
        self.listings.append(cmd)
        items = [
            chat.Conversation(
                id=c,
                kind="group",
                member_ids=[cmd.user_id],
                last_seq=len(self.messages[c]),
                unread_count=len(self.messages[c]),
                last_message=self.messages[c][-1] if self.messages[c] else None,
            )
            for c in self.conversations.get(cmd.user_id, [])
        ]
        return chat.ConversationList(items=items)

    async def list_conversation_ids(self, cmd: chat.ListConversationIds, _: Envelope) -> Any:
        self.listings.append(cmd)
        return chat.ConversationIds(ids=self.conversations.get(cmd.user_id, [])[: cmd.limit])

    async def record(self, cmd: Any, _: Envelope) -> Any:
        self.calls.append(cmd)
        if isinstance(cmd, chat.MarkRead):
            left = max(0, len(self.messages[cmd.conversation_id]) - cmd.seq)
            return chat.ReadMarker(
                conversation_id=cmd.conversation_id, seq=cmd.seq, unread_count=left
            )
        return None

    async def get_profile(self, cmd: user.GetProfile, _: Envelope) -> Any:
        self.calls.append(cmd)
        found = self.profiles.get(cmd.user_id)
        return found if found else Reply.failure(ErrorCode.NOT_FOUND, "no such user")

    async def update_profile(self, cmd: user.UpdateProfile, _: Envelope) -> Any:
        old = self.profiles[cmd.user_id]
        new = user.Profile(
            user_id=old.user_id,
            username=old.username,
            display_name=cmd.display_name or old.display_name,
        )
        self.profiles[cmd.user_id] = new
        return new

    async def notifications(self, cmd: notification.ListNotifications, _: Envelope) -> Any:
        return notification.NotificationList(items=[])

    def consumers(self, client: Any) -> list[Consumer]:
        """One consumer per stood-in service, reading from the streams' end."""
        fast = ConsumerSettings(block_ms=50)
        tables: dict[str, dict[type[Message], Any]] = {
            "chat": {
                chat.GetHistory: self.history,
                chat.ListConversations: self.list_conversations,
                chat.ListConversationIds: self.list_conversation_ids,
                chat.MarkRead: self.record,
                chat.SetTyping: self.record,
            },
            "user": {
                user.GetProfile: self.get_profile,
                user.UpdateProfile: self.update_profile,
                gateway.ConnectionOpened: self.record,
                gateway.ConnectionClosed: self.record,
            },
            "notification": {notification.ListNotifications: self.notifications},
        }
        return [
            Consumer(client, group=g, handlers=h, start_id="$", settings=fast)
            for g, h in tables.items()
        ]


@dataclass
class Gateway:
    """A running gateway: its URL, parts, and the stand-ins behind it."""

    port: int
    deps: GatewayDeps
    services: FakeServices
    mint: TokenMint
    pubsub: PubSub
    app: FastAPI

    def ws_url(self, token: str | None = None, **params: str) -> str:
        query = {**({"token": token} if token else {}), **params}
        tail = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
        return f"ws://127.0.0.1:{self.port}/ws{tail}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def publish(
        self, family: str, key: str, msg: Message, *, droppable: bool = False
    ) -> None:
        """Publish ``msg`` as a real-time frame on ``rt:{<family>:<key>}``."""
        channel = registry.channel(family).key(key)
        await self.pubsub.publish(
            channel, realtime.frame(msg, producer="chat"), droppable=droppable
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running_gateway(
    redis_url: str, options: RealtimeOptions, **overrides: Any
) -> AsyncIterator[Gateway]:
    """A gateway on a free port with fake services; torn down on exit.

    ``overrides`` are gateway :class:`Settings` fields (e.g. ``trusted_proxies="127.0.0.1"``).
    """
    # The stand-ins' consumers read through the gateway's client: its cluster-wide bound, sized
    # for the gateway's own readers, is lifted unless a test sets it.
    overrides.setdefault("redis_max_connections_total", None)
    settings = Settings(redis_url=redis_url, instance=uid("gw"), command_timeout=3.0, **overrides)
    runtime = ServiceRuntime("gateway", settings, owns_database=False)
    await runtime.start()
    publisher = Publisher(runtime.redis, producer="gateway")
    requester = Requester(runtime.redis, publisher, instance_id=settings.instance)
    deps = wire(runtime, requester)
    mint = TokenMint()
    deps.tokens.set_keys([mint.public])
    services = FakeServices()
    consumers = services.consumers(runtime.redis)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(lifespan=lifespan)
    install_realtime(app, deps, options=options)
    install_graphql(app, deps)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets")
    )
    async with requester:
        for c in consumers:
            await c.start()
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
        try:
            yield Gateway(port, deps, services, mint, deps.pubsub, app)
        finally:
            server.should_exit = True
            await task
            for c in consumers:
                await c.stop()
            await publisher.aclose()
            await runtime.stop()


async def receive(ws: Any, *, within: float = 5.0, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The next frame as a dict (frames whose type is in ``skip`` are passed over)."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
        if frame["type"] not in skip:
            return frame
