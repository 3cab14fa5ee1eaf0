"""profiles, contacts, blocks, preferences

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

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("username_lower", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("avatar_url", sa.String(2048), nullable=True),
        sa.Column("bio", sa.Text, nullable=False, server_default=""),
        sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("username_lower", name="uq_profiles_username_lower"),
    )
    op.create_table(
        "contacts",
        sa.Column("user_id", sa.String(64), sa.ForeignKey("profiles.user_id"), primary_key=True),
        sa.Column("contact_id", sa.String(64), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_contacts_contact_id", "contacts", ["contact_id"])
    op.create_table(
        "blocks",
        sa.Column("user_id", sa.String(64), sa.ForeignKey("profiles.user_id"), primary_key=True),
        sa.Column("blocked_id", sa.String(64), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_blocks_blocked_id", "blocks", ["blocked_id"])
    op.create_table(
        "preferences",
        sa.Column("user_id", sa.String(64), sa.ForeignKey("profiles.user_id"), primary_key=True),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("theme", sa.String(16), nullable=False),
        sa.Column("notifications", sa.String(16), nullable=False),
        sa.Column("notification_sound", sa.Boolean, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("preferences")
    op.drop_index("ix_blocks_blocked_id", "blocks")
    op.drop_table("blocks")
    op.drop_index("ix_contacts_contact_id", "contacts")
    op.drop_table("contacts")
    op.drop_table("profiles")
