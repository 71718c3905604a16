"""A new SQLite database's schema in one go, from the statements the migrations leave behind.

Replaying every migration on a new database imports Alembic and runs each script (table copies
of SQLite's batch mode included): ~0.4 s of CPU at the start of ``monitor run``, before its first
poll (issue 15). ``migrations/sqlite_schema.sql`` holds the schema those migrations make (read
back from ``sqlite_master``) and the heads it was made at; ``monitor.store.db.upgrade`` makes a
new, empty SQLite database from it, in one transaction, when those heads are the heads of
``migrations/versions``, and runs the migrations otherwise (an existing database, another
revision, PostgreSQL, or a new migration not in the file yet).

tests/test_schema_snapshot.py checks that the file is current and that a database made from it
equals one made by the migrations (every table, index and row but the random installation id).
After adding a migration, write the file again: ``python -m monitor.store.snapshot``.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import Connection, create_engine, text

from monitor.store.db import MIGRATIONS, run_migrations

SNAPSHOT = MIGRATIONS / "sqlite_schema.sql"
_END = "\n;\n"  # ends each statement: a line of its own, which no statement's text holds
_HEADS = re.compile(r"^-- heads: (.*)$", re.M)
# Tables SQLite makes itself: its own (sqlite_sequence) and those behind a virtual table (FTS5).
_SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")


def new_installation_uid() -> str:
    """The database's random installation id, as migration 1601 makes it."""
    return uuid.uuid4().hex[:12]


def schema_statements(conn: Connection) -> list[str]:
    """The statements that make this SQLite database's schema again, in the order its objects
    were made (automatic indexes and the tables behind a virtual table come by themselves)."""
    rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")).all()
    virtual = [name for name, sql in rows if sql.lstrip().upper().startswith("CREATE VIRTUAL TABLE")]
    made_by_sqlite = {v + s for v in virtual for s in _SHADOWS}
    return [sql for name, sql in rows if not name.startswith("sqlite_") and name not in made_by_sqlite]


def read() -> tuple[frozenset[str], list[str]] | None:
    """(heads, statements) of the file; None without one."""
    try:
        content = SNAPSHOT.read_text(encoding="utf-8")
    except OSError:
        return None
    found = _HEADS.search(content)
    if found is None:
        return None
    # as sqlite_master holds them, to the byte (trailing blank lines too)
    statements = content[found.end():].removeprefix("\n\n").split(_END)
    return frozenset(found.group(1).split()), statements[:-1]


def create(conn: Connection, heads: frozenset[str]) -> bool:
    """Make the schema of a new, empty SQLite database at ``heads`` from the file, committed as
    one transaction (a process stopped half-way leaves no half a schema); False, having done
    nothing, when the file is absent or made at other heads."""
    snapshot = read()
    if snapshot is None or snapshot[0] != heads:
        return False
    # pysqlite opens no transaction for DDL (only before INSERT, UPDATE, DELETE): a savepoint does.
    conn.exec_driver_sql("SAVEPOINT new_schema")
    for statement in snapshot[1]:
        conn.exec_driver_sql(statement)
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), [{"v": h} for h in sorted(heads)])
    conn.execute(text("INSERT INTO installation (id, uid) VALUES (1, :uid)"), {"uid": new_installation_uid()})
    conn.exec_driver_sql("RELEASE new_schema")
    return True


def migrated_statements() -> tuple[frozenset[str], list[str]]:
    """(heads, schema statements) of a new SQLite database made by the migrations."""
    from monitor.store.db import script_heads

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'new.db'}")
        try:
            with engine.begin() as conn:
                run_migrations(conn, "heads")
            with engine.connect() as conn:
                heads = frozenset(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))
                statements = schema_statements(conn)
        finally:
            engine.dispose()
    assert heads == script_heads(), (heads, script_heads())
    return heads, statements


def write() -> Path:
    heads, statements = migrated_statements()
    SNAPSHOT.write_text(
        "-- The schema of a new SQLite database as the migrations of monitor/migrations/versions make it,\n"
        "-- read back from sqlite_master: monitor.store.db.upgrade makes a new database from it (see\n"
        "-- monitor/store/snapshot.py). Written by `python -m monitor.store.snapshot`; do not edit.\n"
        f"-- heads: {' '.join(sorted(heads))}\n\n" + "".join(s + _END for s in statements), encoding="utf-8")
    return SNAPSHOT


if __name__ == "__main__":
    print(f"wrote {write()}")
