"""A new SQLite database made from migrations/sqlite_schema.sql is the one the migrations make."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from monitor.store import create_db_engine, upgrade
from monitor.store import snapshot as schema_snapshot
from monitor.store.db import script_heads


def _unordered(sql: str | None) -> Any:
    """A CREATE TABLE's columns and constraints as a set: the migrations' table copies (SQLite's
    batch mode) write a table's constraints in an order that varies from run to run."""
    if sql is None or not sql.startswith("CREATE TABLE"):
        return sql
    start, end = sql.index("("), sql.rindex(")")
    parts, depth, last = [], 0, start + 1
    for i in range(start + 1, end):
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        if sql[i] == "," and depth == 0:
            parts.append(sql[last:i].strip())
            last = i + 1
    parts.append(sql[last:end].strip())
    return sql[:start], frozenset(parts), sql[end:]


def _contents(engine: Engine) -> tuple[set[tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]]:
    """Every object of sqlite_master (automatic ones included) and every table's rows."""
    with engine.connect() as conn:
        objects: set[tuple[Any, ...]] = {(kind, name, table, _unordered(sql)) for kind, name, table, sql in conn.execute(
            text("SELECT type, name, tbl_name, sql FROM sqlite_master"))}
        tables = [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))]
        rows = {t: sorted(tuple(r) for r in conn.execute(text(f'SELECT * FROM "{t}"'))) for t in tables}
        # the order of the columns is not in that set: compared on its own
        objects |= {("columns", t, tuple(tuple(r) for r in conn.execute(text(f'PRAGMA table_info("{t}")'))))
                    for t in tables}
    return objects, rows


def _made(path: Path, snapshot: bool) -> Engine:
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine, snapshot=snapshot)
    return engine


def test_the_snapshot_is_made_at_the_current_heads() -> None:
    read = schema_snapshot.read()
    assert read is not None
    assert read[0] == script_heads(), "a migration is missing from it: run `python -m monitor.store.snapshot`"


def test_a_database_made_from_the_snapshot_equals_one_made_by_the_migrations(tmp_path: Path) -> None:
    fast, slow = _made(tmp_path / "fast.db", True), _made(tmp_path / "slow.db", False)
    (fast_objects, fast_rows), (slow_objects, slow_rows) = _contents(fast), _contents(slow)
    assert fast_objects == slow_objects
    # the installation id is random per database, as the migration makes it
    (_, fast_uid), = fast_rows.pop("installation")
    (_, slow_uid), = slow_rows.pop("installation")
    assert re.fullmatch("[0-9a-f]{12}", fast_uid) and fast_uid != slow_uid
    assert fast_rows == slow_rows
    assert {r[0] for r in fast_rows["alembic_version"]} == script_heads()
    # made whole (one transaction): upgrading again changes nothing
    upgrade(fast)
    assert _contents(fast)[0] == fast_objects
    fast.dispose()
    slow.dispose()


def test_only_a_new_database_at_the_snapshot_heads_is_made_from_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[bool] = []
    create = schema_snapshot.create

    def spy(conn: Any, heads: frozenset[str]) -> bool:
        used.append(done := create(conn, heads))
        return done

    monkeypatch.setattr(schema_snapshot, "create", spy)
    old = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(old, "0001")  # a database left by an older version: its migrations run
    upgrade(old)
    assert used == []
    new = _made(tmp_path / "new.db", True)
    assert used == [True]
    assert _contents(old)[0] == _contents(new)[0]
    monkeypatch.setattr(schema_snapshot, "SNAPSHOT", tmp_path / "absent.sql")  # no file: the migrations
    _made(tmp_path / "other.db", True).dispose()
    assert used == [True, False]
    old.dispose()
    new.dispose()
