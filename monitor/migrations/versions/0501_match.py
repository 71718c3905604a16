"""match: the field, speaker and quote of a match, for queries and templates

Revision ID: 0501
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0501'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('match', schema=None) as batch_op:
        batch_op.add_column(sa.Column('field', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('speaker', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('quote', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('match', schema=None) as batch_op:
        batch_op.drop_column('quote')
        batch_op.drop_column('speaker')
        batch_op.drop_column('field')
