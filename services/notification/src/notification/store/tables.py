"""Tables of the notification service's own database."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
)

from shared.outbox import outbox_table

metadata = MetaData()

# Message ids whose effects are committed: recorded in the same transaction as the effects, so a
# redelivered event or command changes nothing twice.
processed_messages = Table(
    "processed_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("conversation_id", String(64)),
    Column("sender_id", String(64)),
    Column("seq", BigInteger),
    Column("count", Integer, nullable=False, default=1),
    Column("preview", String(200), nullable=False, default=""),
    Column("read", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Listing (newest first), unread counts, and "open for coalescing / read this conversation".
    Index("ix_notifications_user_updated", "user_id", "updated_at", "id"),
    Index("ix_notifications_user_read_conv", "user_id", "read", "conversation_id"),
)

user_settings = Table(
    "user_settings",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("level", String(16), nullable=False, default="all"),
    Column("dnd_start", String(5)),
    Column("dnd_end", String(5)),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    Column("webhook_url", String(2048)),
)

# Kept apart from user_settings, which the audience cache copies into Redis: the secret stays in
# the database, sealed (AES-GCM, bound to the user id) under a key derived from the service's
# NOTIFICATION_WEBHOOK_SECRET.
webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

conversation_settings = Table(
    "conversation_settings",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("conversation_id", String(64), primary_key=True),
    Column("muted_until", DateTime(timezone=True)),
    Column("level", String(16)),
)

# Local projections of other services' facts (from their events; never their databases).
conversation_members = Table(
    "conversation_members",
    metadata,
    Column("conversation_id", String(64), primary_key=True),
    Column("user_id", String(64), primary_key=True),
)

user_blocks = Table(
    "user_blocks",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("blocked_id", String(64), primary_key=True),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(500)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_deliveries_status", "status", "updated_at"),
)

# Stream entries (notification.events, the delivery queue) written in the transaction of the
# notifications they announce; appended after the commit, or by the relay (shared.outbox).
outbox = outbox_table(metadata)
