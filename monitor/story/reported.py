"""Who else reported an article's story: the one query behind "also reported by".

Read in two shapes: rows, by ``also_reported_by`` (digests, a claim that did not read them), and
one JSON array inside the delivery claim (``monitor.alerts.outbox``), which saves a statement per
delivery. Both come from ``reported_by`` so the rule lives in one place, and both are turned into
the listing by ``outlets``. Their user is delivery (``monitor.deliver.worker``), hence no NumPy
here (``also_reported_by`` was in stories.py, which imports it, so a digest loaded the story
index): the outbox imports this at start, and a process that only delivers stays small.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, and_, bindparam
from sqlalchemy import select as core_select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from monitor.store.models import Article, Source


def reported_by(article_id: Any, *, as_json: bool = False) -> Any:
    """The SELECT of the other outlets' articles of ``article_id``'s story (a value or a column
    expression), as rows (outlet, language) in first-seen order, or with ``as_json`` as one JSON
    array of ``[outlet, language, article id]`` triples in no particular order (``[]`` when there
    are none; ``json_rows`` puts them in order). Articles of the same outlet are not "others";
    an article without a story (NULL) joins nothing.

    The JSON carries the id rather than being ordered by it because SQLite (before 3.44) cannot
    order an aggregate's input; the same expression serves both databases."""
    art, src = Article.__table__, Source.__table__  # type: ignore[attr-defined]
    this = art.alias("this")
    reports = art.join(src, src.c.id == art.c.source_id).join(
        this, and_(this.c.story_id == art.c.story_id, this.c.source_id != art.c.source_id))
    if not as_json:
        return core_select(src.c.name, art.c.language).select_from(reports).where(this.c.id == article_id) \
            .order_by(art.c.id)
    return core_select(_JsonTriples(src.c.name, art.c.language, art.c.id)).select_from(reports) \
        .where(this.c.id == article_id)


class _JsonTriples(FunctionElement[Any]):
    """The aggregate JSON array of ``[a, b, c]`` per row (``[]`` for no rows), in each
    database's own words."""

    type = JSON()
    inherit_cache = True


@compiles(_JsonTriples)
def _sqlite_triples(element: _JsonTriples, compiler: Any, **kw: Any) -> str:
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


@compiles(_JsonTriples, "postgresql")
def _pg_triples(element: _JsonTriples, compiler: Any, **kw: Any) -> str:
    return f"coalesce(json_agg(json_build_array({compiler.process(element.clauses, **kw)})), '[]'::json)"


def json_rows(triples: Iterable[Sequence[Any]]) -> list[tuple[str, str | None]]:
    """``reported_by``'s JSON array as its rows: (outlet, language) in first-seen order."""
    return [(name, lang) for name, lang, _ in sorted(triples, key=lambda t: t[2])]


def outlets(rows: Iterable[Sequence[Any]]) -> list[str]:
    """``also_reported_by`` from its rows, (outlet, language) in first-seen order: each outlet
    once, with the languages of its reports."""
    langs: dict[str, list[str]] = {}
    for name, lang in rows:
        have = langs.setdefault(name, [])
        if lang and lang not in have:
            have.append(lang)
    return [f"{name} ({', '.join(ls)})" if ls else name for name, ls in langs.items()]


@lru_cache(maxsize=1)
def _reported_by_statement() -> Any:
    """Other sources' articles of the same story (``reported_by``), in one query built once: it
    runs for every alert delivered (issue 15)."""
    return reported_by(bindparam("article_id"))


def also_reported_by(session: Session, article_id: int) -> list[str]:
    """The other outlets known to carry the article's story, first-seen order, with their language.

    "Kazinform (ru)": a story now spans languages, and the reader of an alert wants to know that
    the Russian and Turkish press reported it too. Outlets are listed once, with the languages of
    their reports in the story.
    """
    return outlets(session.connection().execute(_reported_by_statement(), {"article_id": article_id}).all())
