"""Use cases of conversations: create, get, list mine, add and remove members, leave."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chat.domain import conversations as rules
from chat.domain.conversations import Conversation, Kind, Member, Role
from chat.domain.errors import ForbiddenError, InvalidError, NotFoundError
from chat.handlers import shapes
from chat.store.protocols import BlockStore, ConversationStore, EventSink, MessageStore, ReadStore
from contracts import chat as wire
from contracts.base import new_message_id
from contracts.text import CONTROL_MESSAGE, forbidden_control


def check_text(value: str | None, *, field: str) -> None:
    """InvalidError when people's text holds a control character the contracts refuse.

    Checked before any write: a NUL reaching PostgreSQL fails the statement, and a command that
    fails that way is retried until dead-lettered, holding up its conversation's partition.
    """
    if value is not None and forbidden_control(value) is not None:
        raise InvalidError(f"{field} {CONTROL_MESSAGE}")


async def member_view(
    store: ConversationStore, conversation_id: str, user_id: str
) -> tuple[Conversation, Role]:
    """The conversation and the caller's role, for a read or a write.

    A non-member gets the NotFoundError an absent conversation gets, word for word: a different
    answer (a 403 "only members write") would tell anyone which conversation ids exist.
    """
    conv = await store.get(conversation_id)
    if conv is None:
        raise NotFoundError(f"no conversation {conversation_id}")
    return conv, conv.require_reader(user_id)


async def refuse_direct_block(blocks: BlockStore, conv: Conversation, user_id: str) -> None:
    """ForbiddenError when ``conv`` is direct and either of its two users blocks the other."""
    if conv.kind is not Kind.DIRECT:
        return
    other = next((m.user_id for m in conv.members if m.user_id != user_id), user_id)
    if await blocks.blocked_between(user_id, other):
        raise ForbiddenError("a block stands between these users")


class Conversations:
    """Conversation use cases."""

    def __init__(
        self,
        *,
        conversations: ConversationStore,
        messages: MessageStore,
        reading: ReadStore,
        blocks: BlockStore,
        events: EventSink,
        clock: Callable[[], datetime],
        member_limit: int = rules.DEFAULT_MEMBER_LIMIT,
    ) -> None:
        self._store = conversations
        self._messages = messages
        self._reading = reading
        self._blocks = blocks
        self._events = events
        self._clock = clock
        self.member_limit = member_limit

    async def create(self, cmd: wire.CreateConversation) -> wire.Conversation:
        """Create a group, or the direct conversation of a pair (returning it if it exists)."""
        kind = Kind(cmd.kind)
        check_text(cmd.title, field="title")
        members = rules.plan_members(
            kind=kind,
            creator_id=cmd.creator_id,
            member_ids=list(cmd.member_ids),
            title=cmd.title,
            member_limit=self.member_limit,
        )
        pair = None
        if kind is Kind.DIRECT:
            other = members[1].user_id
            pair = rules.direct_pair(cmd.creator_id, other)
            if await self._blocks.blocked_between(cmd.creator_id, other):
                raise ForbiddenError("a block stands between these users")
        else:
            await self._refuse_blockers(cmd.creator_id, [m.user_id for m in members[1:]])
        draft = Conversation(
            id=new_message_id(),
            kind=kind,
            created_by=cmd.creator_id,
            created_at=self._clock(),
            members=members,
            title=cmd.title,
        )
        conv = await self._store.create(draft, direct_pair=pair)
        if conv.id == draft.id:
            event = wire.ConversationCreated(
                conversation_id=conv.id,
                kind=cmd.kind,
                creator_id=cmd.creator_id,
                member_ids=[m.user_id for m in conv.members],
                title=conv.title,
            )
            # Also on every member's personal channel: members already connected learn of it.
            await self._events.emit(event, users=event.member_ids)
        return await self._view(conv, cmd.creator_id)

    async def get(self, cmd: wire.GetConversation) -> wire.Conversation:
        """One conversation as the caller sees it (members only)."""
        conv, _ = await member_view(self._store, cmd.conversation_id, cmd.user_id)
        return await self._view(conv, cmd.user_id)

    async def list_mine(self, cmd: wire.ListConversations) -> wire.ConversationList:
        """The caller's conversations, most recent activity first."""
        page, cursor = await self._store.list_for(cmd.user_id, cursor=cmd.cursor, limit=cmd.limit)
        return wire.ConversationList(items=[shapes.summary(s) for s in page], next=cursor)

    async def list_ids(self, cmd: wire.ListConversationIds) -> wire.ConversationIds:
        """The ids of the caller's conversations, most recent activity first."""
        return wire.ConversationIds(ids=await self._store.ids_for(cmd.user_id, limit=cmd.limit))

    async def add_members(self, cmd: wire.AddMembers) -> wire.Conversation:
        """Add users to a group; each addition is announced."""
        conv, _ = await member_view(self._store, cmd.conversation_id, cmd.user_id)
        role = Role(cmd.role)
        fresh = rules.check_add(
            conv, cmd.user_id, list(cmd.member_ids), role, member_limit=self.member_limit
        )
        await self._refuse_blockers(cmd.user_id, fresh)
        await self._store.add_members(conv.id, [Member(u, role) for u in fresh])
        for user in fresh:
            event = wire.MemberAdded(
                conversation_id=conv.id, user_id=user, role=cmd.role, added_by=cmd.user_id
            )
            await self._events.emit(event, users=[user])
        updated, _ = await member_view(self._store, conv.id, cmd.user_id)
        return await self._view(updated, cmd.user_id)

    async def remove_member(self, cmd: wire.RemoveMember) -> None:
        """Remove a member of a lower role."""
        conv, _ = await member_view(self._store, cmd.conversation_id, cmd.user_id)
        rules.check_remove(conv, cmd.user_id, cmd.member_id)
        await self._store.remove_member(conv.id, cmd.member_id)
        event = wire.MemberRemoved(
            conversation_id=conv.id, user_id=cmd.member_id, removed_by=cmd.user_id
        )
        await self._events.emit(event, users=[cmd.member_id])

    async def leave(self, cmd: wire.LeaveConversation) -> None:
        """Leave a group (an owner hands over the role first)."""
        conv, _ = await member_view(self._store, cmd.conversation_id, cmd.user_id)
        successor = rules.successor_on_leave(conv, cmd.user_id)
        await self._store.remove_member(conv.id, cmd.user_id, new_owner=successor)
        event = wire.MemberRemoved(conversation_id=conv.id, user_id=cmd.user_id)
        await self._events.emit(event, users=[cmd.user_id])

    async def _refuse_blockers(self, actor_id: str, added: list[str]) -> None:
        # A blocked user cannot pull the blocker into a group (nor create one around them).
        if await self._blocks.blockers_of(actor_id, added):
            raise ForbiddenError("a user to add has blocked you")

    async def _view(self, conv: Conversation, user_id: str) -> wire.Conversation:
        last_seq = await self._store.last_seq(conv.id)
        last = await self._messages.get(conv.id, last_seq) if last_seq else None
        unread = await self._reading.unread(conv.id, user_id)
        return shapes.conversation(conv, last_seq=last_seq, unread=unread, last=last)
