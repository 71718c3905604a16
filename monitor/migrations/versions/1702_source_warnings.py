"""source warnings: what the last poll that read a source noticed without failing (entries
skipped, links left for later, pages that are walls), and when

Revision ID: 1702
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1702"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("source", sa.Column("last_warnings", sa.Text(), nullable=True))
    op.add_column("source", sa.Column("last_warnings_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.drop_column("last_warnings_at")
        batch_op.drop_column("last_warnings")
