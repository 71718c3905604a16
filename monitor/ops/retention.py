"""Retention: old articles are deleted; matched ones (with their matches, alerts and deliveries)
are kept longer, because an alert's history is what a user comes back to.

Rows that point at a deleted row (any table's foreign key, whichever area added it) depend on it
and are deleted first; a reference within one table (a duplicate of, a digest of) is set to NULL.
So pruning keeps working as other stages add tables. Deletes run in batches, one transaction each, so a large prune never holds long locks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, Connection, Engine, Table, delete, exists, select, update

from monitor.config import RetentionSettings
from monitor.match.text import terms
from monitor.store.models import METADATA
from monitor.store.terms import forget_terms
from monitor.util import plural

BATCH = 500


@dataclass
class PruneResult:
    deleted: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def __str__(self) -> str:
        if not self.total:
            return "nothing to prune"
        return "deleted " + ", ".join(plural(n, t) for t, n in sorted(self.deleted.items()))


def _references(table: Table) -> list[tuple[Table, Column[object], Column[object]]]:
    """(referencing table, its column, the referenced column of ``table``) for every foreign key."""
    out = []
    for t in METADATA.tables.values():
        for fk in t.foreign_keys:
            if fk.column.table is table:
                out.append((t, fk.parent, fk.column))
    return out


def _delete_rows(conn: Connection, table: Table, ids: Sequence[object], result: PruneResult,
                 depth: int = 0) -> None:
    if not ids or depth > 8:
        return
    pk = next(iter(table.primary_key.columns))
    for ref_table, ref_col, target in _references(table):
        values = ids if target is pk else [r[0] for r in conn.execute(select(target).where(pk.in_(ids)))]
        if ref_table is table:  # a row pointing at a sibling (duplicate of, digest of): unlink
            conn.execute(update(ref_table).where(ref_col.in_(values)).values({ref_col.name: None}))
            continue
        ref_pk = next(iter(ref_table.primary_key.columns))
        child_ids = [r[0] for r in conn.execute(select(ref_pk).where(ref_col.in_(values)))]
        _delete_rows(conn, ref_table, child_ids, result, depth + 1)
    n = conn.execute(delete(table).where(pk.in_(ids))).rowcount or 0
    result.deleted[table.name] += n


def prune(engine: Engine, settings: RetentionSettings, now: datetime | None = None,
          dry_run: bool = False) -> PruneResult:
    now = now or datetime.now(UTC)
    tables = METADATA.tables
    article, match = tables["article"], tables["match"]
    article_cutoff = now - timedelta(seconds=settings.articles)
    alert_cutoff = now - timedelta(seconds=settings.alerts)
    has_match = exists().where(match.c.article_id == article.c.id)
    old_unmatched = (article.c.first_seen_at < article_cutoff) & ~has_match
    old_any = article.c.first_seen_at < alert_cutoff
    result = PruneResult()
    while True:
        with engine.begin() as conn:
            ids = [r[0] for r in conn.execute(select(article.c.id).where(old_unmatched | old_any)
                                              .order_by(article.c.id).limit(BATCH))]
            if not ids:
                break
            if dry_run:
                result.deleted["article"] += len(conn.execute(
                    select(article.c.id).where(old_unmatched | old_any)).all())
                result.deleted["match"] += len(conn.execute(
                    select(match.c.id).join(article, match.c.article_id == article.c.id).where(old_any)).all())
                break
            if conn.dialect.name == "sqlite":  # words of the articles going (see forget_terms)
                forget_terms(conn, [(i, terms(t or "", x or "")) for i, t, x in conn.execute(
                    select(article.c.id, article.c.title, article.c.text).where(article.c.id.in_(ids)))])
            _delete_rows(conn, article, ids, result)
    if not dry_run:
        _prune_stories(engine, alert_cutoff, result)
    return result


def _prune_stories(engine: Engine, cutoff: datetime, result: PruneResult) -> None:
    """Stories outlive their articles until none is left and they are older than the alerts cutoff."""
    story, article = METADATA.tables["story"], METADATA.tables["article"]
    cond = ~exists().where(article.c.story_id == story.c.id) & (story.c.created_at < cutoff)
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(select(story.c.id).where(cond))]
        for i in range(0, len(ids), BATCH):
            _delete_rows(conn, story, ids[i:i + BATCH], result)
