"""Who else reported an article's story: the one query behind "also reported by".

Read in two shapes: rows, by ``monitor.story.stories.also_reported_by``, and (PostgreSQL) one
JSON array inside the delivery claim (``monitor.alerts.outbox``), which saves a round trip per
delivery. Both come from ``reported_by`` so the rule lives in one place. No NumPy here: the
outbox imports it at start.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func
from sqlalchemy import select as core_select

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
