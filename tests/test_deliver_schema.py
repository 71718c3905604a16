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
