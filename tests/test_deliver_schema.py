"""The delivery migration (0601) and the models agree, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from monitor.store.models import METADATA
from tests.deliver_helpers import store

OURS = {"alert", "delivery"}


def _table(diff: Any) -> str | None:
    if isinstance(diff, list):  # column modifications come grouped
        return _table(diff[0]) if diff else None
    for part in diff[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if name and hasattr(part, "columns"):
            return str(name)
    return str(diff[2]) if len(diff) > 2 and isinstance(diff[2], str) else None


def test_migrated_delivery_tables_match_the_models(database_url: str) -> None:
    engine = store(database_url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), METADATA)
    ours = [d for d in diffs if _table(d) in OURS]
    assert ours == []
    engine.dispose()


def test_the_core_source_table_is_the_models_and_the_migrations(database_url: str) -> None:
    """The daemon's claim loop and polls use ``monitor.store.source_table.SOURCE`` without the ORM
    (issue 15): it is the very table ``Source`` maps, and its columns, types, nullability and
    indexes are what the migrations made."""
    from monitor.store.models import Source
    from monitor.store.source_table import SOURCE

    assert Source.__table__ is SOURCE and METADATA.tables["source"] is SOURCE
    engine = store(database_url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), METADATA)
    assert [d for d in diffs if _table(d) == "source"] == []
    engine.dispose()


def test_the_entry_lookups_columns_are_the_article_tables(database_url: str) -> None:
    """A poll looks up which entries are new through ``ARTICLE_KEYS`` (Core, before the ORM is
    imported): its names must be the ``article`` table's, and the lookup must find a stored
    article by its URL and, within its source, by its GUID, on both databases."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from monitor.store.source_table import ARTICLE_KEYS, SOURCE

    article = METADATA.tables["article"]
    assert ARTICLE_KEYS.name == article.name
    assert {c.name for c in ARTICLE_KEYS.c} <= {c.name for c in article.c}
    engine = store(database_url)
    with engine.begin() as conn:
        sid = conn.execute(insert(SOURCE).values(name="s", url="http://example.test/feed")
                           .returning(SOURCE.c.id)).scalar_one()
        conn.execute(insert(article).values(
            source_id=sid, guid="g-1", url="http://example.test/a", original_url="http://example.test/a?x",
            title="t", text="body", content_hash="h", first_seen_at=datetime.now(UTC)))
    a = ARTICLE_KEYS.c
    with engine.connect() as conn:
        assert conn.execute(select(a.url, a.guid, a.source_id).where(a.url == "http://example.test/a")).all() == [
            ("http://example.test/a", "g-1", sid)]
        assert conn.execute(select(a.url).where(a.source_id == sid, a.guid == "g-1")).scalars().all() == [
            "http://example.test/a"]
    engine.dispose()
