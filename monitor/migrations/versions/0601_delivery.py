"""delivery: outbox leases, digests, notices

Revision ID: 0601
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0601"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.alter_column("match_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("kind", sa.String(), nullable=False, server_default="match"))
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("digest_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("digest_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_delivery_digest_id"), ["digest_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_digest_id"))
        batch_op.drop_column("digest_id")
        batch_op.drop_column("digest_due_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("kind")
        batch_op.alter_column("match_id", existing_type=sa.Integer(), nullable=False)
