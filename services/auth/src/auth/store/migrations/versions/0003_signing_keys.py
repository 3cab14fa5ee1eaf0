"""signing keys (private halves sealed) and stored command replies

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(128), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("processed_messages") as batch:
        batch.add_column(sa.Column("reply", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processed_messages") as batch:
        batch.drop_column("reply")
    op.drop_table("signing_keys")
