"""Tables of the user service's own database."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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

profiles = Table(
    "profiles",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("username", String(32), nullable=False),
    # Lower-cased copy: prefix search uses this index on SQLite and PostgreSQL alike.
    Column("username_lower", String(32), nullable=False),
    Column("display_name", String(64), nullable=False),
    Column("avatar_url", String(2048), nullable=True),
    Column("bio", Text, nullable=False, server_default=""),
    Column("time_zone", String(64), nullable=False, server_default="UTC"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("username_lower", name="uq_profiles_username_lower"),
)

contacts = Table(
    "contacts",
    metadata,
    Column("user_id", String(64), ForeignKey("profiles.user_id"), primary_key=True),
    Column("contact_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Reverse lookups: who lists this user (their presence goes to them).
    Index("ix_contacts_contact_id", "contact_id"),
)

blocks = Table(
    "blocks",
    metadata,
    Column("user_id", String(64), ForeignKey("profiles.user_id"), primary_key=True),
    Column("blocked_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_blocks_blocked_id", "blocked_id"),
)

preferences = Table(
    "preferences",
    metadata,
    Column("user_id", String(64), ForeignKey("profiles.user_id"), primary_key=True),
    Column("language", String(35), nullable=False),
    Column("theme", String(16), nullable=False),
    Column("notifications", String(16), nullable=False),
    Column("notification_sound", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Events stored in the transaction of the change they announce, until they are appended to their
# stream (``shared.outbox``: the handler appends after the commit, the relay after a failure).
outbox = outbox_table(metadata)
