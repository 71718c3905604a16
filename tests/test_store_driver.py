"""monitor.store.driver: the hot statements run on the driver's cursor get the parameters
SQLAlchemy's own execution would bind (``Compiled.construct_params`` and the types' bind
processors), worked out once per statement instead of at every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError, UnsupportedCompilationError

from monitor import ingest
from monitor.alerts import feedback, gate, outbox
from monitor.store import create_db_engine, driver, terms, upgrade
from monitor.store.db import write_health
from monitor.store.models import Match
from monitor.story import stories

NOW = datetime(2025, 9, 24, 7, 15, tzinfo=UTC)
STORIES = ("_COPIES", "_RECENT_AND_KNOWN", "_PG_RECENT_AND_KNOWN", "_BOILERPLATE", "_PG_BOILERPLATE", "_EXACT",
           "_FETCH", "_NEW_STORY", "_BANDS", "_PG_BANDS", "_LEARN", "_APART", "_PG_CANDIDATES", "_EVENT", "_PG_EVENT",
           "_EVENT_KEYS", "_PG_EVENT_KEYS", "_PG_CLAIM", "_PG_RELEASE")


def _statements() -> dict[str, Any]:
    found = {name: getattr(stories, name) for name in STORIES}
    found.update(claimed=gate._CLAIMED, claim=gate._CLAIM, mutes=feedback._LIVE_MUTES, delivery=outbox._DELIVERY,
                 match=outbox._inserts()[0], alert=outbox._inserts()[1], terms=terms._SAVE,
                 sqlite_terms=terms._SQLITE_SAVE, article=ingest._insert_article()[0],
                 release=outbox._release_statement(("attempts", "status")),
                 claim_by_channel=outbox._claim_statement(True, False, None, True),
                 record_and_claim=outbox._claim_statement(False, False, ("status",), True))
    return found


def _value(bind: Any) -> Any:
    """A value of the parameter's type."""
    try:
        kind = bind.type.python_type
    except NotImplementedError:
        kind = None
    if kind is datetime or bind.key in ("since", "at", "now", "until"):
        return NOW
    return {bool: True, int: 7, float: 1.5, dict: {"a": 1}, list: [1, 2]}.get(kind, f"text of {bind.key}")


class _Conn:
    """What ``driver.precompiled`` reads of a connection."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect()], ids=["sqlite", "postgresql"])
def test_each_hot_statement_binds_what_sqlalchemys_execution_would(dialect: Dialect) -> None:
    checked = 0
    for name, stmt in _statements().items():
        try:
            prepared = driver.precompiled(_Conn(dialect), stmt)  # type: ignore[arg-type]
        except UnsupportedCompilationError:
            continue  # the other database's statement
        assert prepared.plan is not None, f"{name}: its parameters are worked out at every run"
        compiled: Any = prepared.compiled
        params = {b.key: _value(b) for n, b in compiled.binds.items() if b.required and not n.startswith("%")}
        by_name: Any = compiled.construct_params(params)
        for n, process in prepared.binds:
            by_name[n] = process(by_name[n])
        expected = by_name if prepared.order is None else [by_name[n] for n in prepared.order]
        assert repr(driver._bound(prepared, params)) == repr(expected), name  # (psycopg's Json has no ==)
        checked += 1
    assert checked >= 25


def test_a_failed_read_on_the_driver_does_not_mark_writes_failing(tmp_path: Path) -> None:
    """As for statements run by SQLAlchemy (``store.db``'s write health): a read the database
    refuses leaves /readyz's "writes ok"; a refused write does not."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    try:
        with engine.connect() as conn:
            # A table dropped under a precompiled statement: the database refuses it (no such table).
            conn.exec_driver_sql("CREATE TABLE gone (x INTEGER)")
            conn.commit()
            read, write = text("SELECT x FROM gone"), text("INSERT INTO gone (x) VALUES (:x)")
            driver.rows(conn, read, {})
            driver.run(conn, write, {"x": 1})
            conn.commit()
            conn.exec_driver_sql("DROP TABLE gone")
            conn.commit()
            with pytest.raises(OperationalError):
                driver.rows(conn, read, {})
            conn.rollback()
            assert write_health(engine).ready()[0]
            with pytest.raises(OperationalError):
                driver.run(conn, write, {"x": 2})
            conn.rollback()
            ok, why = write_health(engine).ready()
            assert not ok and "no such table" in why, why
    finally:
        engine.dispose()


def test_two_databases_in_one_process_store_and_read_what_sqlalchemy_would(tmp_path: Path, pg_url: str) -> None:
    """The compiled statements are shared by every engine of a dialect: SQLite, PostgreSQL and
    SQLite again in one process (a second database, a reload), each row written on the driver
    is the one SQLAlchemy's own execution of the same statement writes, and read back the same:
    an aware datetime of another zone, None, booleans, JSON, an error text."""
    from sqlalchemy import bindparam
    from sqlalchemy import select as core_select

    from monitor.store.models import Article, Source

    art, source = Article.__table__, Source.__table__  # type: ignore[attr-defined]
    read = core_select(art.c.published, art.c.published_estimated, art.c.full_text, art.c.authors,
                       art.c.fetch_error, art.c.first_seen_at).where(art.c.id == bindparam("id"))
    kolkata = timezone(timedelta(hours=5, minutes=30))
    article_stmt, names = ingest._insert_article()
    match_stmt = outbox._inserts()[0]
    for url in (f"sqlite:///{tmp_path / 'a.db'}", pg_url, f"sqlite:///{tmp_path / 'b.db'}"):
        engine = create_db_engine(url)
        upgrade(engine)
        try:
            with engine.begin() as conn:
                src = conn.execute(source.insert().values(name="s", url="http://s.test/feed")
                                   .returning(source.c.id)).scalar_one()
                values = {n: None for n in names} | {
                    "source_id": src, "original_url": "http://s.test/o", "title": "T", "text": "Body.",
                    "published": datetime(2025, 9, 24, 12, 45, tzinfo=kolkata), "published_estimated": True,
                    "full_text": False, "fetch_error": "HTTP 500",
                    "first_seen_at": NOW, "reread_count": 0}
                ids = []
                for how, key in (("driver", "a"), ("sqlalchemy", "b")):
                    row_values = values | {"guid": key, "url": f"http://s.test/{key}"}
                    if how == "driver":
                        row = driver.run(conn, article_stmt, row_values)[1]
                    else:
                        row = conn.execute(article_stmt, row_values).first()
                    assert row is not None
                    ids.append(int(row[0]))
                stored = [conn.execute(read, {"id": i}).one() for i in ids]
                assert stored[0] == stored[1], url
                assert [tuple(driver.rows(conn, read, {"id": i})[0]) for i in ids] == [tuple(r) for r in stored]
                assert stored[0][1:4] == (True, False, None)
                match = {"rule": "r", "hits": [{"term": "x", "at": 1}], "statements": [], "created_at": NOW,
                         "field": None, "speaker": None, "quote": "q"}
                m1 = driver.run(conn, match_stmt, match | {"article_id": ids[0]})[1]
                m2 = conn.execute(match_stmt, match | {"article_id": ids[1]}).first()
                assert m1 is not None and m2 is not None
                matches = Match.__table__  # type: ignore[attr-defined]
                got = [conn.execute(core_select(matches).where(matches.c.id == m[0])).one()[2:] for m in (m1, m2)]
                assert got[0] == got[1], url
        finally:
            engine.dispose()
