"""conversations, members, messages, read markers, blocks

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

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(128), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_activity_at", TS, nullable=False),
        sa.Column("direct_pair", sa.String(160), nullable=True),
        sa.UniqueConstraint("direct_pair", name="uq_conversations_direct_pair"),
    )
    op.create_table(
        "members",
        sa.Column(
            "conversation_id", sa.String(64), sa.ForeignKey("conversations.id"), primary_key=True
        ),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("last_read_seq", sa.Integer, nullable=False, server_default="0"),
        sa.Column("joined_at", TS, nullable=False),
    )
    op.create_index("ix_members_user", "members", ["user_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "conversation_id", sa.String(64), sa.ForeignKey("conversations.id"), nullable=False
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("sender_id", sa.String(64), nullable=False),
        sa.Column("client_msg_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("mentions", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("edited_at", TS, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        sa.UniqueConstraint(
            "conversation_id", "sender_id", "client_msg_id", name="uq_messages_client_msg_id"
        ),
    )
    op.create_table(
        "blocks",
        sa.Column("blocker_id", sa.String(64), primary_key=True),
        sa.Column("blocked_id", sa.String(64), primary_key=True),
        sa.Column("since", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blocks")
    op.drop_table("messages")
    op.drop_index("ix_members_user", table_name="members")
    op.drop_table("members")
    op.drop_table("conversations")
