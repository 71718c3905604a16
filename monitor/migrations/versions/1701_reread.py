"""reread: each article's feed-entry digest, and how often and when it was read again after its
entry changed (README "Updated articles")

Revision ID: 1701
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1701"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no table copy on SQLite): articles stored before have no digest, and
    # are never re-read (their entries' digests are not known to have changed).
    op.add_column("article", sa.Column("entry_digest", sa.String(), nullable=True))
    op.add_column("article", sa.Column("reread_count", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("article", sa.Column("reread_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_column("reread_at")
        batch_op.drop_column("reread_count")
        batch_op.drop_column("entry_digest")
