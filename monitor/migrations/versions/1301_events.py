"""events: article signatures (names, figures) for cross-language event stories; stories kept apart

Revision ID: 1301
Revises: 0001
Vectors are in article_vector (1201); no foreign key to story (a merge deletes stories)
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1301"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "story_event",
        sa.Column("article_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("sig", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("article_id"),
    )
    op.create_index("ix_story_event_at", "story_event", ["at"])
    op.create_table(
        "story_event_key",
        sa.Column("key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("article_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("key", "at", "article_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "story_apart",
        sa.Column("story_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("other_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("story_id", "other_id"),
    )


def downgrade() -> None:
    op.drop_table("story_apart")
    op.drop_table("story_event_key")
    op.drop_index("ix_story_event_at", table_name="story_event")
    op.drop_table("story_event")
