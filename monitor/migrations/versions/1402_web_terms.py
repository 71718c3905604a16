"""web: each article's distinct folded words (article_terms), for the rule editor's preview

The preview narrows a window of articles in SQL to those holding a rule's anchor words before
evaluating them for real. Narrowing on the stored title and text could not be exact (SQL does
not fold accents and case as the matcher does: "Turkiye" missed "Türkiye") and, on PostgreSQL,
read every article's compressed text. This table holds the matcher's own folded words
(``monitor.match.text.terms``; layout and queries in ``monitor.store.terms``): on PostgreSQL a
table with a pg_trgm GIN index answering ``LIKE '% word %'`` (contrib's pg_trgm, a trusted
extension; without it the preview still works, by a scan of this table), on SQLite a
contentless FTS5 table. Existing articles are filled in here.

Revision ID: 1402
Revises: 1401
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1402"
down_revision: str | None = "1401"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 2000


def upgrade() -> None:
    from monitor.match.text import terms
    from monitor.store.terms import SQLITE_FTS, save_terms_bulk

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(SQLITE_FTS)
    else:
        op.create_table(
            "article_terms",
            sa.Column("article_id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("terms", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(["article_id"], ["article.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("article_id"),
        )
    article = sa.table("article", sa.column("id", sa.Integer()), sa.column("title", sa.Text()),
                       sa.column("text", sa.Text()))
    last = 0
    while True:  # in chunks by id: a large store is never held in memory at once
        rows = bind.execute(sa.select(article.c.id, article.c.title, article.c.text)
                            .where(article.c.id > last).order_by(article.c.id).limit(CHUNK)).all()
        if not rows:
            break
        save_terms_bulk(bind, [(i, terms(t or "", x or "")) for i, t, x in rows])
        last = rows[-1][0]
    if bind.dialect.name == "postgresql" and _trigram_extension(bind):
        # Built after the fill (one pass instead of row by row).
        op.execute("CREATE INDEX ix_article_terms_trgm ON article_terms USING gin (terms gin_trgm_ops)")


def _trigram_extension(bind: sa.Connection) -> bool:
    """pg_trgm installed, or installable here (in a savepoint: a refusal leaves the migration
    going, and the preview then scans article_terms instead of using an index)."""
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first():
        return True
    if not bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first():
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True


def downgrade() -> None:
    op.drop_table("article_terms")
