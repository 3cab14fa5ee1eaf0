# strawberry's field decorators are typed through its mypy plugin, which the root config does
# not load; the resolvers themselves are fully annotated.
# mypy: disable-error-code="untyped-decorator"
"""The GraphQL schema (strawberry): types, queries and mutations over the gateway's backend.

Resolvers are thin: one command each (through :class:`~gateway.handlers.backend.Backend`), and
each records the cache tags of the entities it returns in the context (``conv:<id>``,
``convs:<user>``, ``profile:<user>``: the vocabulary of :mod:`gateway.handlers.invalidation`),
so a cached result is dropped when one of them changes. A result that shows the viewer's
notifications is not cached at all (``volatile``), as their REST routes are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from contracts import chat, notification, user
from contracts.base import Command
from gateway.handlers.backend import Backend, BackendError, RequestContext
from gateway.handlers.tokens import AccessClaims


@dataclass
class GraphContext:
    """Per request: who asks, how to reach the services, and the tags the result shows."""

    viewer: AccessClaims
    backend: Backend
    request: RequestContext
    tags: list[str] = field(default_factory=list)
    invalidate: list[str] = field(default_factory=list)
    """Tags a mutation made stale (invalidated right after, so the viewer reads its writes)."""
    volatile: bool = False
    """The result shows something not worth caching (the viewer's notifications)."""

    async def call(self, command: Command) -> Any:
        """Send ``command``; a failure becomes a GraphQL error with ``extensions.code``."""
        try:
            # Structs are not checked on construction: check the bounds before sending.
            msgspec.convert(msgspec.to_builtins(command), type(command))
        except msgspec.ValidationError as e:
            raise GraphQLError(str(e), extensions={"code": "invalid"}) from e
        try:
            return await self.backend.call(command, self.request)
        except BackendError as e:
            raise GraphQLError(e.message, extensions={"code": e.code}) from e


GInfo = Info[GraphContext, None]


@strawberry.type
class User:
    """A user's public profile."""

    id: strawberry.ID
    username: str
    display_name: str
    avatar_url: str | None
    bio: str
    time_zone: str

    @classmethod
    def of(cls, p: user.Profile) -> User:
        """From the contract."""
        return cls(
            id=strawberry.ID(p.user_id),
            username=p.username,
            display_name=p.display_name,
            avatar_url=p.avatar_url,
            bio=p.bio,
            time_zone=p.time_zone,
        )


@strawberry.type
class Message:
    """A chat message (a deleted one is a tombstone with an empty body)."""

    id: strawberry.ID
    conversation_id: strawberry.ID
    seq: int
    sender_id: strawberry.ID
    body: str
    client_msg_id: str
    mentions: list[strawberry.ID]
    created_at: datetime
    edited_at: datetime | None
    deleted: bool

    @classmethod
    def of(cls, m: chat.ChatMessage) -> Message:
        """From the contract."""
        return cls(
            id=strawberry.ID(m.id),
            conversation_id=strawberry.ID(m.conversation_id),
            seq=m.seq,
            sender_id=strawberry.ID(m.sender_id),
            body=m.body,
            client_msg_id=m.client_msg_id,
            mentions=[strawberry.ID(x) for x in m.mentions],
            created_at=m.created_at,
            edited_at=m.edited_at,
            deleted=m.deleted,
        )


@strawberry.type
class Conversation:
    """A conversation as the viewer sees it."""

    id: strawberry.ID
    kind: str
    title: str | None
    member_ids: list[strawberry.ID]
    last_seq: int
    unread_count: int
    last_message: Message | None

    @classmethod
    def of(cls, c: chat.Conversation) -> Conversation:
        """From the contract."""
        return cls(
            id=strawberry.ID(c.id),
            kind=c.kind,
            title=c.title,
            member_ids=[strawberry.ID(x) for x in c.member_ids],
            last_seq=c.last_seq,
            unread_count=c.unread_count,
            last_message=Message.of(c.last_message) if c.last_message else None,
        )


@strawberry.type
class Notification:
    """One of the viewer's notifications."""

    id: strawberry.ID
    kind: str
    conversation_id: strawberry.ID | None
    sender_id: strawberry.ID | None
    seq: int | None
    count: int
    preview: str
    read: bool
    created_at: datetime


@strawberry.type
class ReadMarker:
    """The viewer's read marker after ``markRead``."""

    conversation_id: strawberry.ID
    seq: int
    unread_count: int


@strawberry.type
class SendResult:
    """The stored message; ``replay`` when the client message id was already used."""

    message: Message
    replay: bool


def _limit(value: int) -> int:
    if not 1 <= value <= 100:
        raise GraphQLError("limit must be between 1 and 100", extensions={"code": "invalid"})
    return value


@strawberry.type
class Query:
    """What the viewer can read."""

    @strawberry.field(description="The viewer's own profile.")
    async def me(self, info: GInfo) -> User:
        ctx = info.context
        ctx.tags.append(f"profile:{ctx.viewer.user_id}")
        return User.of(await ctx.call(user.GetProfile(user_id=ctx.viewer.user_id)))

    @strawberry.field(description="A user's profile, or null when there is no such user.")
    async def user(self, info: GInfo, id: strawberry.ID) -> User | None:
        ctx = info.context
        ctx.tags.append(f"profile:{id}")
        try:
            profile = await ctx.backend.call(user.GetProfile(user_id=str(id)), ctx.request)
        except BackendError as e:
            if e.code == "not_found":
                return None
            raise GraphQLError(e.message, extensions={"code": e.code}) from e
        return User.of(profile)

    @strawberry.field(description="The viewer's conversations, most recent first.")
    async def conversations(self, info: GInfo, limit: int = 50) -> list[Conversation]:
        ctx = info.context
        page: chat.ConversationList = await ctx.call(
            chat.ListConversations(user_id=ctx.viewer.user_id, limit=_limit(limit))
        )
        ctx.tags.append(f"convs:{ctx.viewer.user_id}")
        ctx.tags += [f"conv:{c.id}" for c in page.items]
        return [Conversation.of(c) for c in page.items]

    @strawberry.field(description="Messages in ascending seq: after N, before N, or the latest.")
    async def messages(
        self,
        info: GInfo,
        conversation_id: strawberry.ID,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[Message]:
        ctx = info.context
        ctx.tags.append(f"conv:{conversation_id}")
        history: chat.History = await ctx.call(
            chat.GetHistory(
                user_id=ctx.viewer.user_id,
                conversation_id=str(conversation_id),
                before=before,
                after=after,
                limit=_limit(limit),
            )
        )
        return [Message.of(m) for m in history.items]

    @strawberry.field(description="The viewer's notifications, newest first.")
    async def notifications(self, info: GInfo, limit: int = 50) -> list[Notification]:
        ctx = info.context
        ctx.volatile = True
        page: notification.NotificationList = await ctx.call(
            notification.ListNotifications(user_id=ctx.viewer.user_id, limit=_limit(limit))
        )
        return [
            Notification(
                id=strawberry.ID(n.id),
                kind=n.kind,
                conversation_id=strawberry.ID(n.conversation_id) if n.conversation_id else None,
                sender_id=strawberry.ID(n.sender_id) if n.sender_id else None,
                seq=n.seq,
                count=n.count,
                preview=n.preview,
                read=n.read,
                created_at=n.created_at,
            )
            for n in page.items
        ]


@strawberry.type
class Mutation:
    """What the viewer can change."""

    @strawberry.mutation(description="Post a message (the same clientMsgId again is a replay).")
    async def send_message(
        self,
        info: GInfo,
        conversation_id: strawberry.ID,
        body: str,
        client_msg_id: str,
        mentions: list[strawberry.ID] | None = None,
    ) -> SendResult:
        ctx = info.context
        result: chat.PostResult = await ctx.call(
            chat.PostMessage(
                sender_id=ctx.viewer.user_id,
                conversation_id=str(conversation_id),
                client_msg_id=client_msg_id,
                body=body,
                mentions=[str(m) for m in mentions or []],
            )
        )
        ctx.invalidate.append(f"conv:{conversation_id}")
        return SendResult(message=Message.of(result.message), replay=result.replay)

    @strawberry.mutation(description="Move the viewer's read marker forward.")
    async def mark_read(self, info: GInfo, conversation_id: strawberry.ID, seq: int) -> ReadMarker:
        ctx = info.context
        marker: chat.ReadMarker = await ctx.call(
            chat.MarkRead(user_id=ctx.viewer.user_id, conversation_id=str(conversation_id), seq=seq)
        )
        ctx.invalidate += [f"conv:{conversation_id}", f"convs:{ctx.viewer.user_id}"]
        return ReadMarker(
            conversation_id=strawberry.ID(marker.conversation_id),
            seq=marker.seq,
            unread_count=marker.unread_count,
        )

    @strawberry.mutation(description="Change the viewer's profile (omitted fields stay).")
    async def update_profile(
        self,
        info: GInfo,
        display_name: str | None = None,
        avatar_url: str | None = None,
        bio: str | None = None,
        time_zone: str | None = None,
    ) -> User:
        ctx = info.context
        profile = await ctx.call(
            user.UpdateProfile(
                user_id=ctx.viewer.user_id,
                display_name=display_name,
                avatar_url=avatar_url,
                bio=bio,
                time_zone=time_zone,
            )
        )
        ctx.invalidate.append(f"profile:{ctx.viewer.user_id}")
        return User.of(profile)
