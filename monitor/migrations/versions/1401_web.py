"""web: analysts' feedback (wrong match, mutes) and per-rule feed tokens

Revision ID: 1401
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1401"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=True),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_feedback_rule_kind", "feedback", ["rule", "kind"])
    op.create_table(
        "feed_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_feed_token_rule", "feed_token", ["rule"])
    # Articles per source and day (the sources page's sparklines) from the index alone.
    op.create_index("ix_article_seen_source", "article", ["first_seen_at", "source_id"])


def downgrade() -> None:
    op.drop_index("ix_article_seen_source", "article")
    op.drop_index("ix_feed_token_rule", "feed_token")
    op.drop_table("feed_token")
    op.drop_index("ix_feedback_rule_kind", "feedback")
    op.drop_table("feedback")
