"""Tables of the chat service's own database."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

from chat.store.sql_types import UtcDateTime

metadata = MetaData()

# Message ids whose effects are committed: recorded in the same transaction as the effects, so a
# redelivered event or command changes nothing twice.
processed_messages = Table(
    "processed_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("handled_at", UtcDateTime(), nullable=False, server_default=func.now()),
)

# ``last_seq`` is the per-conversation sequence counter: a post increments it with
# UPDATE ... RETURNING in the transaction that inserts the message, so the row lock serializes
# posters of one conversation and a rolled-back post gives its number back (no gaps).
# ``direct_pair`` ("<low>|<high>", NULL for groups) makes one direct conversation per pair.
conversations = Table(
    "conversations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("title", String(128), nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("last_activity_at", UtcDateTime(), nullable=False),
    Column("direct_pair", String(160), nullable=True),
    UniqueConstraint("direct_pair", name="uq_conversations_direct_pair"),
)

# ``position`` keeps joining order (the owner's successor is the earliest admin, else member).
members = Table(
    "members",
    metadata,
    Column("conversation_id", String(64), ForeignKey("conversations.id"), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("position", Integer, nullable=False),
    Column("last_read_seq", Integer, nullable=False, default=0),
    Column("joined_at", UtcDateTime(), nullable=False),
    Index("ix_members_user", "user_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("conversation_id", String(64), ForeignKey("conversations.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("sender_id", String(64), nullable=False),
    Column("client_msg_id", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("mentions", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("edited_at", UtcDateTime(), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False, default=1),
    UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    UniqueConstraint(
        "conversation_id", "sender_id", "client_msg_id", name="uq_messages_client_msg_id"
    ),
)

# Fed by user.events: who blocked whom (a direct conversation between them is refused).
blocks = Table(
    "blocks",
    metadata,
    Column("blocker_id", String(64), primary_key=True),
    Column("blocked_id", String(64), primary_key=True),
    Column("since", UtcDateTime(), nullable=False),
)
