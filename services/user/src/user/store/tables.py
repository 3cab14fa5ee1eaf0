"""Tables of the user service's own database."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, String, Table, func

metadata = MetaData()

# Message ids whose effects are committed: recorded in the same transaction as the effects, so a
# redelivered event or command changes nothing twice.
processed_messages = Table(
    "processed_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
