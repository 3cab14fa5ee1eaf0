"""Messages of the chat service: conversation and message commands, their events, typing frames.

Commands go to ``chat.commands`` and events to ``chat.events``, both partitioned by conversation id
so one conversation's messages stay in order. Every event is also published on the conversation's
real-time channel ``rt:{conv:<id>}`` (a fast path; the chat service holds the durable record), and
``TypingChanged`` travels only there.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from contracts.base import ChannelMessage, Command, Event, Id, UtcDatetime

__all__ = [
    "AddMembers",
    "ChatMessage",
    "Conversation",
    "ConversationCreated",
    "ConversationIds",
    "ConversationList",
    "CreateConversation",
    "DeleteMessage",
    "EditMessage",
    "GetConversation",
    "GetHistory",
    "GetReadMarkers",
    "GetTyping",
    "GetUnread",
    "History",
    "LeaveConversation",
    "ListConversationIds",
    "ListConversations",
    "MarkRead",
    "MemberAdded",
    "MemberReadMarker",
    "MemberRemoved",
    "MessageDeleted",
    "MessageEdited",
    "MessagePosted",
    "PostMessage",
    "PostResult",
    "ReadMarker",
    "ReadMarkers",
    "ReadUpdated",
    "RemoveMember",
    "SetTyping",
    "TypingChanged",
    "TypingList",
    "UnreadCount",
    "UnreadCounts",
]

COMMANDS = "chat.commands"
EVENTS = "chat.events"

Body = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
Seq = Annotated[int, msgspec.Meta(ge=0)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Mentions = Annotated[list[Id], msgspec.Meta(max_length=50)]
MemberIds = Annotated[list[Id], msgspec.Meta(max_length=1000)]
ConversationKind = Literal["direct", "group"]
MemberRole = Literal["owner", "admin", "member"]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A message as clients see it; a deleted one is a tombstone with an empty body."""

    id: Id
    conversation_id: Id
    seq: Seq
    sender_id: Id
    body: Annotated[str, msgspec.Meta(max_length=4000)]
    client_msg_id: Id
    created_at: UtcDatetime
    mentions: Mentions = msgspec.field(default_factory=list)
    edited_at: UtcDatetime | None = None
    deleted: bool = False


class Conversation(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A conversation as one member sees it (with that member's unread count)."""

    id: Id
    kind: ConversationKind
    member_ids: MemberIds
    last_seq: Seq = 0
    title: Title | None = None
    unread_count: Annotated[int, msgspec.Meta(ge=0)] = 0
    last_message: ChatMessage | None = None


class ConversationList(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A page of conversations; ``next`` is the cursor of the next page."""

    items: Annotated[list[Conversation], msgspec.Meta(max_length=100)]
    next: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class ConversationIds(msgspec.Struct, frozen=True, kw_only=True):
    """The ids of a user's conversations, most recent activity first."""

    ids: Annotated[list[Id], msgspec.Meta(max_length=10_000)]


class PostResult(msgspec.Struct, frozen=True, kw_only=True):
    """The stored message; ``replay`` is true when the client message id was already posted."""

    message: ChatMessage
    replay: bool


class History(msgspec.Struct, frozen=True, kw_only=True):
    """Messages in ascending ``seq``; ``recovered`` is false when the asked gap was too large."""

    items: Annotated[list[ChatMessage], msgspec.Meta(max_length=100)]
    recovered: bool = True


class ReadMarker(msgspec.Struct, frozen=True, kw_only=True):
    """A member's read marker after a change (never moves back)."""

    conversation_id: Id
    seq: Seq
    unread_count: Annotated[int, msgspec.Meta(ge=0)]


class MemberReadMarker(msgspec.Struct, frozen=True, kw_only=True):
    """One member's read marker: the highest ``seq`` they have read (0: nothing yet)."""

    user_id: Id
    seq: Seq


class ReadMarkers(msgspec.Struct, frozen=True, kw_only=True):
    """Every member's read marker in one conversation, by user id."""

    conversation_id: Id
    items: Annotated[list[MemberReadMarker], msgspec.Meta(max_length=1000)]


class UnreadCount(msgspec.Struct, frozen=True, kw_only=True):
    """A member's unread count in one conversation."""

    conversation_id: Id
    unread_count: Annotated[int, msgspec.Meta(ge=0)]


class UnreadCounts(msgspec.Struct, frozen=True, kw_only=True):
    """A user's unread counts: the total and one entry per conversation with unread messages."""

    total: Annotated[int, msgspec.Meta(ge=0)]
    items: Annotated[list[UnreadCount], msgspec.Meta(max_length=10_000)]


class TypingList(msgspec.Struct, frozen=True, kw_only=True):
    """The members typing in a conversation now."""

    conversation_id: Id
    user_ids: MemberIds


class CreateConversation(Command, frozen=True, kw_only=True):
    """Create a direct (exactly one other member) or group conversation."""

    TYPE = "chat.create_conversation"
    STREAM = COMMANDS
    KEY = "creator_id"
    RESULT = Conversation

    creator_id: Id
    kind: ConversationKind
    member_ids: MemberIds
    title: Title | None = None


class GetConversation(Command, frozen=True, kw_only=True):
    """One conversation, if ``user_id`` is a member."""

    TYPE = "chat.get_conversation"
    STREAM = COMMANDS
    KEY = "conversation_id"
    RESULT = Conversation

    user_id: Id
    conversation_id: Id


class ListConversations(Command, frozen=True, kw_only=True):
    """A user's conversations, most recent first."""

    TYPE = "chat.list_conversations"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = ConversationList

    user_id: Id
    cursor: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    limit: Limit = 50


class ListConversationIds(Command, frozen=True, kw_only=True):
    """The ids of a user's conversations, most recent activity first, at most ``limit``: what a
    real-time connection subscribes, in one request (``ListConversations`` pages summaries)."""

    TYPE = "chat.list_conversation_ids"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = ConversationIds

    user_id: Id
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1000


class AddMembers(Command, frozen=True, kw_only=True):
    """Add users to a group (by its owner or an admin; only the owner adds admins)."""

    TYPE = "chat.add_members"
    STREAM = COMMANDS
    KEY = "conversation_id"
    RESULT = Conversation

    user_id: Id
    conversation_id: Id
    member_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=1000)]
    role: MemberRole = "member"


class RemoveMember(Command, frozen=True, kw_only=True):
    """Remove a member of a group (by someone of a higher role)."""

    TYPE = "chat.remove_member"
    STREAM = COMMANDS
    KEY = "conversation_id"

    user_id: Id
    conversation_id: Id
    member_id: Id


class LeaveConversation(Command, frozen=True, kw_only=True):
    """Leave a group (an owner who leaves hands the role to the first admin, else member)."""

    TYPE = "chat.leave_conversation"
    STREAM = COMMANDS
    KEY = "conversation_id"

    user_id: Id
    conversation_id: Id


class GetUnread(Command, frozen=True, kw_only=True):
    """A user's unread counts over all their conversations."""

    TYPE = "chat.get_unread"
    STREAM = COMMANDS
    KEY = "user_id"
    RESULT = UnreadCounts

    user_id: Id


class PostMessage(Command, frozen=True, kw_only=True):
    """Post a message; the same ``client_msg_id`` again returns the original (``replay``)."""

    TYPE = "chat.post_message"
    STREAM = COMMANDS
    KEY = "conversation_id"
    RESULT = PostResult

    sender_id: Id
    conversation_id: Id
    client_msg_id: Id
    body: Body
    mentions: Mentions = msgspec.field(default_factory=list)


class EditMessage(Command, frozen=True, kw_only=True):
    """Edit one's own message."""

    TYPE = "chat.edit_message"
    STREAM = COMMANDS
    KEY = "conversation_id"
    RESULT = ChatMessage

    user_id: Id
    conversation_id: Id
    seq: Seq
    body: Body


class DeleteMessage(Command, frozen=True, kw_only=True):
    """Delete one's own message (or any, as a group admin); leaves a tombstone."""

    TYPE = "chat.delete_message"
    STREAM = COMMANDS
    KEY = "conversation_id"
    RESULT = ChatMessage

    user_id: Id
    conversation_id: Id
    seq: Seq


class GetHistory(Command, frozen=True, kw_only=True):
    """Messages by sequence: after N (first ``limit`` above), before N (last below), or latest."""

    TYPE = "chat.get_history"
    STREAM = COMMANDS
    KEY = "conversation_id"
    RESULT = History

    user_id: Id
    conversation_id: Id
    before: Seq | None = None
    after: Seq | None = None
    limit: Limit = 50


class MarkRead(Command, frozen=True, kw_only=True):
    """Move a member's read marker forward to ``seq``."""

    TYPE = "chat.mark_read"
    STREAM = COMMANDS
    KEY = "conversation_id"
    RESULT = ReadMarker

    user_id: Id
    conversation_id: Id
    seq: Seq


class GetReadMarkers(Command, frozen=True, kw_only=True):
    """Every member's read marker in a conversation; the caller must be a member."""

    TYPE = "chat.get_read_markers"
    STREAM = COMMANDS
    KEY = "conversation_id"
    RESULT = ReadMarkers

    user_id: Id
    conversation_id: Id


class SetTyping(Command, frozen=True, kw_only=True):
    """A member is typing, or stopped (``typing=False``); the gateway sends it debounced and chat
    publishes ``TypingChanged`` on a change."""

    TYPE = "chat.set_typing"
    STREAM = COMMANDS
    KEY = "conversation_id"
    TIMEOUT = 2.0

    user_id: Id
    conversation_id: Id
    typing: bool = True


class GetTyping(Command, frozen=True, kw_only=True):
    """The members typing in a conversation (members only)."""

    TYPE = "chat.get_typing"
    STREAM = COMMANDS
    KEY = "conversation_id"
    TIMEOUT = 2.0
    RESULT = TypingList

    user_id: Id
    conversation_id: Id


class ConversationCreated(Event, frozen=True, kw_only=True):
    """A conversation was created with its first members."""

    TYPE = "chat.conversation_created"
    STREAM = EVENTS
    KEY = "conversation_id"

    conversation_id: Id
    kind: ConversationKind
    creator_id: Id
    member_ids: MemberIds
    title: Title | None = None


class MessagePosted(Event, frozen=True, kw_only=True):
    """A message was stored with the next sequence number of its conversation."""

    TYPE = "chat.message_posted"
    STREAM = EVENTS
    KEY = "conversation_id"

    conversation_id: Id
    message: ChatMessage


class MessageEdited(Event, frozen=True, kw_only=True):
    """A message's body changed."""

    TYPE = "chat.message_edited"
    STREAM = EVENTS
    KEY = "conversation_id"

    conversation_id: Id
    message: ChatMessage


class MessageDeleted(Event, frozen=True, kw_only=True):
    """A message became a tombstone."""

    TYPE = "chat.message_deleted"
    STREAM = EVENTS
    KEY = "conversation_id"

    conversation_id: Id
    seq: Seq
    message_id: Id
    deleted_by: Id


class ReadUpdated(Event, frozen=True, kw_only=True):
    """A member's read marker moved forward."""

    TYPE = "chat.read_updated"
    STREAM = EVENTS
    KEY = "conversation_id"

    conversation_id: Id
    user_id: Id
    seq: Seq


class MemberAdded(Event, frozen=True, kw_only=True):
    """A user joined a conversation."""

    TYPE = "chat.member_added"
    STREAM = EVENTS
    KEY = "conversation_id"

    conversation_id: Id
    user_id: Id
    role: MemberRole = "member"
    added_by: Id | None = None


class MemberRemoved(Event, frozen=True, kw_only=True):
    """A user left or was removed from a conversation."""

    TYPE = "chat.member_removed"
    STREAM = EVENTS
    KEY = "conversation_id"

    conversation_id: Id
    user_id: Id
    removed_by: Id | None = None


class TypingChanged(ChannelMessage, frozen=True, kw_only=True):
    """A member started or stopped typing (real-time only; may be dropped)."""

    TYPE = "chat.typing_changed"
    CHANNEL = "rt.conv"
    KEY = "conversation_id"

    conversation_id: Id
    user_id: Id
    typing: bool
