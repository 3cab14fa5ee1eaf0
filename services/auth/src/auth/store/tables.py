"""Tables of the auth service's own database."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table, func

from shared.outbox import outbox_table

metadata = MetaData()

# Message ids whose effects are committed: recorded in the same transaction as the effects, so a
# redelivered event or command changes nothing twice. ``reply`` keeps the (sealed) reply of a
# command that must answer a replay the same way (register, login, refresh, change_password).
processed_messages = Table(
    "processed_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("reply", LargeBinary, nullable=True),
)

# Accounts. ``username`` keeps the registered spelling; ``username_key`` (lower case) is unique so
# usernames are unique case-insensitively on every database. ``roles``: comma-separated names.
accounts = Table(
    "accounts",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("username", String(32), nullable=False),
    Column("username_key", String(32), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("roles", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True), nullable=False),
)

# Token signing keys: the private half sealed with the key-encryption key (AES-GCM, bound to kid).
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("public_key", String(128), nullable=False),
    Column("private_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True),
    Column("not_after", DateTime(timezone=True), nullable=True),
)

# Events stored in the transaction of the change they announce, appended to ``auth.events`` after
# the commit and forgotten once appended (``shared.outbox``; its relay appends what a crash or a
# failed append left).
outbox = outbox_table(metadata)
