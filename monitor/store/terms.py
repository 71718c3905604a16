"""Each article's distinct folded words (``article_terms``), so the rule editor's preview can
narrow a window of articles to those holding a rule's anchor words without reading their texts.

The words are the matcher's own (``monitor.match.text.terms``: folded for case and accents,
the same the evaluator sees), so the narrowing is exact: an article the matcher would match is
never left out. Stored per backend in the form that answers "which articles hold this word, or
a word starting with this stem" from an index (migration 1402):

- PostgreSQL: a table (article_id, terms) with the words between spaces and a pg_trgm GIN
  index; ``terms LIKE '% word %'`` (or ``'% stem%'``) is answered by the index and rechecked on
  the few rows it returns. Without pg_trgm the same LIKE scans the table (still exact).
- SQLite: a contentless FTS5 table (rowid = article id, no positions, no copy of the text),
  tokenised on spaces only, so each stored word is one token; ``"word"`` and ``"stem"*``.

Retention (``monitor.ops.retention``) deletes old articles: PostgreSQL's rows go with them (a
foreign key, ON DELETE CASCADE); SQLite's contentless table cannot cascade and keeps no copy of
what it indexed, so ``forget_terms`` tells it which words to drop, recomputed from the article
before it is deleted (the words are a pure function of its title and text). A leftover entry
(an id SQLite gives again to a new article) could only add a candidate (the candidates are
evaluated for real), never hide one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    Text,
    bindparam,
    column,
    insert,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session

from monitor.store import driver

# PostgreSQL's table (SQLite's is a virtual table written with its own statement).
TERMS = table("article_terms", column("article_id", Integer), column("terms", Text))
SQLITE_FTS = "CREATE VIRTUAL TABLE article_terms USING fts5(terms, content='', detail=none, tokenize=\"ascii tokenchars '_'\")"

# A key as the presearcher has it: ("=", word) for that exact word, ("*", stem) for any word
# starting with stem.
Key = tuple[str, str]


_SQLITE_SAVE = text("INSERT INTO article_terms (rowid, terms) VALUES (:id, :terms)")
_SAVE = insert(TERMS).values(article_id=bindparam("article_id"), terms=bindparam("terms"))


def save_terms(session: Session, article_id: int, terms: str) -> None:
    """Store an article's words (``monitor.match.text.terms``) in the same transaction."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        driver.run(conn, _SQLITE_SAVE, {"id": article_id, "terms": terms})
    else:
        driver.run(conn, _SAVE, {"article_id": article_id, "terms": terms})


def replace_terms(session: Session, article_id: int, before: str, terms: str) -> None:
    """An article's words after its text changed (an updated article read again); ``before``:
    the words stored for it (SQLite's contentless table must be told them to drop them)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        forget_terms(conn, [(article_id, before)])
        driver.run(conn, _SQLITE_SAVE, {"id": article_id, "terms": terms})
    else:
        if not conn.execute(TERMS.update().where(TERMS.c.article_id == article_id).values(terms=terms)).rowcount:
            driver.run(conn, _SAVE, {"article_id": article_id, "terms": terms})


def save_terms_bulk(conn: Connection, rows: Sequence[tuple[int, str]]) -> None:
    """Many articles' words at once (the migration's fill, benches)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.execute(_SQLITE_SAVE, [{"id": i, "terms": t} for i, t in rows])
    else:
        conn.execute(_SAVE, [{"article_id": i, "terms": t} for i, t in rows])


def forget_terms(conn: Connection, rows: Sequence[tuple[int, str]]) -> None:
    """Drop deleted articles' words, ``(article id, its terms)``, from SQLite's contentless FTS5
    table: it stores no copy of them, so its 'delete' command must be given the words indexed.
    Nothing to do on PostgreSQL (the rows cascade with their article)."""
    if not rows or conn.dialect.name != "sqlite":
        return
    # Only ids the table has indexed: a 'delete' of one it never saw makes SQLite report the
    # database as malformed. (Words given that it did not index for the id are ignored.)
    indexed = {r[0] for r in conn.execute(
        select(column("id", Integer)).select_from(table("article_terms_docsize"))
        .where(column("id", Integer).in_([i for i, _ in rows])))}
    rows = [(i, t) for i, t in rows if i in indexed]
    if rows:
        conn.execute(text("INSERT INTO article_terms (article_terms, rowid, terms) VALUES ('delete', :id, :terms)"),
                     [{"id": i, "terms": t} for i, t in rows])


def holding(dialect: str, sides: Iterable[Iterable[Key]]) -> Select[Any]:
    """The ids of the articles holding, for every side, a word of that side (a subquery)."""
    groups = [sorted(side) for side in sides]
    if dialect == "sqlite":
        # FTS5 query: each word a quoted string (a word never holds '"'), a stem a prefix query.
        match = " AND ".join("(" + " OR ".join(f'"{w}"' + ("*" if kind == "*" else "") for kind, w in g) + ")"
                             for g in groups)
        return select(column("rowid", Integer)).select_from(table("article_terms")).where(
            text("article_terms MATCH :fts").bindparams(fts=match))
    t = TERMS.c.terms
    # Words are \w+ runs: '_' is the only LIKE wildcard one can hold; '\' (the default escape) escapes it.
    conds = [or_(*(t.like("%" + (f" {w} " if kind == "=" else f" {w}").replace("_", "\\_") + "%") for kind, w in g))
             for g in groups]
    return select(TERMS.c.article_id).where(*conds)

