"""The delivery migration (0601) and the models agree, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from monitor.store import models  # noqa: F401  (registers the tables)
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
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    ours = [d for d in diffs if _table(d) in OURS]
    assert ours == []
    engine.dispose()
