"""notifications, preferences, delivery outcomes, membership and block projections

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("conversation_id", sa.String(64)),
        sa.Column("sender_id", sa.String(64)),
        sa.Column("seq", sa.BigInteger),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("preview", sa.String(200), nullable=False),
        sa.Column("read", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_notifications_user_updated", "notifications", ["user_id", "updated_at", "id"]
    )
    op.create_index(
        "ix_notifications_user_read_conv", "notifications", ["user_id", "read", "conversation_id"]
    )
    op.create_table(
        "user_settings",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("dnd_start", sa.String(5)),
        sa.Column("dnd_end", sa.String(5)),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("webhook_url", sa.String(2048)),
    )
    op.create_table(
        "conversation_settings",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(64), primary_key=True),
        sa.Column("muted_until", sa.DateTime(timezone=True)),
        sa.Column("level", sa.String(16)),
    )
    op.create_table(
        "conversation_members",
        sa.Column("conversation_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "user_blocks",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("blocked_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "deliveries",
        sa.Column("notification_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(500)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_deliveries_status", "deliveries", ["status", "updated_at"])


def downgrade() -> None:
    for table in (
        "deliveries",
        "user_blocks",
        "conversation_members",
        "conversation_settings",
        "user_settings",
    ):
        op.drop_table(table)
    op.drop_index("ix_notifications_user_read_conv", table_name="notifications")
    op.drop_index("ix_notifications_user_updated", table_name="notifications")
    op.drop_table("notifications")
