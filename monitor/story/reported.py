"""Who else reported an article's story: the one query behind "also reported by".

Read in two shapes: rows, by ``also_reported_by``, and (PostgreSQL) one JSON array inside the
delivery claim (``monitor.alerts.outbox``), which saves a round trip per delivery. Both come from
``reported_by`` so the rule lives in one place, and both become the alert's words in ``outlets``.
Their one user is delivery (``monitor.deliver.worker``), hence no NumPy here (stories.py, where
they were, imports it): the outbox imports this at start, and a process that only delivers does
not load the story index's libraries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, func
from sqlalchemy import select as core_select
from sqlmodel import Session

from monitor.store.models import Article, Source


def reported_by(article_id: Any, *, as_json: bool = False) -> Any:
    """The SELECT of the other outlets' articles of ``article_id``'s story (a value or a column
    expression), as rows (outlet, language) in first-seen order, or with ``as_json`` as one JSON
    array of those pairs in that order (``[]`` when there are none; PostgreSQL). Articles of
    the same outlet are not "others"; an article without a story (NULL) joins nothing."""
    art, src = Article.__table__, Source.__table__  # type: ignore[attr-defined]
    this = art.alias("this")
    reports = art.join(src, src.c.id == art.c.source_id).join(
        this, and_(this.c.story_id == art.c.story_id, this.c.source_id != art.c.source_id))
    if not as_json:
        return core_select(src.c.name, art.c.language).select_from(reports).where(this.c.id == article_id) \
            .order_by(art.c.id)
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    rows = func.json_agg(aggregate_order_by(func.json_build_array(src.c.name, art.c.language), art.c.id))
    return core_select(func.coalesce(rows, func.json_build_array())).select_from(reports).where(this.c.id == article_id)


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


def outlets(rows: Iterable[Sequence[Any]]) -> list[str]:
    """``also_reported_by`` from its rows, (outlet, language) in first-seen order (the delivery
    worker reads them with its claim)."""
    langs: dict[str, list[str]] = {}
    for name, lang in rows:
        have = langs.setdefault(name, [])
        if lang and lang not in have:
            have.append(lang)
    return [f"{name} ({', '.join(ls)})" if ls else name for name, ls in langs.items()]
