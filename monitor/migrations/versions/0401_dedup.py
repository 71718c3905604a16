"""dedup: stories, near-duplicate LSH bands, outlet boilerplate, story claims and alerts

Revision ID: 0401
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0401"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LSH_INDEX_SHIFT = 10  # PostgreSQL's GIN indexes band keys >> 10 (see monitor.story.stories)


def upgrade() -> None:
    op.create_table(
        "story",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_story_created_at", "story", ["created_at"])
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.add_column(sa.Column("story_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_article_story_id", "story", ["story_id"], ["id"])
        batch_op.create_foreign_key("fk_article_duplicate_of", "article", ["duplicate_of"], ["id"])
        batch_op.create_index("ix_article_story_id", ["story_id"])
    op.create_table(
        "dedup_band",
        sa.Column("band", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("article_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("band", "article_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "dedup_sig",
        sa.Column("article_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bands", sa.ARRAY(sa.Integer()).with_variant(sa.JSON(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("article_id"),
    )
    if op.get_bind().dialect.name == "postgresql":  # SQLite uses dedup_band instead
        # GIN over the band keys cut to 22 bits: millions of distinct 32-bit keys cost a GIN
        # entry each (about 1.4 GB at a million articles); 4 million shorter keys share entries
        # with compressed posting lists. Lookups recheck the full keys in the row.
        op.execute(f"CREATE FUNCTION dedup_lsh_keys(integer[]) RETURNS integer[] LANGUAGE sql IMMUTABLE "
                   f"PARALLEL SAFE AS $$ SELECT array_agg(DISTINCT b >> {LSH_INDEX_SHIFT}) FROM unnest($1) b $$")
        op.execute("CREATE INDEX ix_dedup_sig_keys ON dedup_sig USING gin ((dedup_lsh_keys(bands))) "
                   "WITH (fastupdate = off)")
    op.create_table(
        "dedup_boilerplate",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("paragraph", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["source.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("source_id", "paragraph"),
    )
    op.create_table(
        "dedup_claim",
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "story_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("statement", sa.String(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["story_id"], ["story.id"]),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("story_id", "rule", "statement", name="uq_story_alert"),
    )
    op.create_index("ix_story_alert_story_id", "story_alert", ["story_id"])


def downgrade() -> None:
    op.drop_table("story_alert")
    op.drop_table("dedup_claim")
    op.drop_table("dedup_boilerplate")
    op.drop_table("dedup_sig")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS dedup_lsh_keys(integer[])")
    op.drop_table("dedup_band")
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_index("ix_article_story_id")
        batch_op.drop_constraint("fk_article_duplicate_of", type_="foreignkey")
        batch_op.drop_constraint("fk_article_story_id", type_="foreignkey")
        batch_op.drop_column("duplicate_of")
        batch_op.drop_column("story_id")
    op.drop_index("ix_story_created_at", table_name="story")
    op.drop_table("story")
