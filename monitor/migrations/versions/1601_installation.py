"""day one: an installation id (random, made with the database) in every delivery key, and the
interval each source's next poll was planned with

Revision ID: 1601
Revises: 0001
"""
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1601"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(), nullable=False),
    )
    # Random per database: a reset or a second deployment never reuses an alert's id.
    op.bulk_insert(table, [{"id": 1, "uid": uuid.uuid4().hex[:12]}])
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.add_column(sa.Column("poll_interval", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.drop_column("poll_interval")
    op.drop_table("installation")
