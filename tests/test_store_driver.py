"""monitor.store.driver: the hot statements run on the driver's cursor get the parameters
SQLAlchemy's own execution would bind (``Compiled.construct_params`` and the types' bind
processors), worked out once per statement instead of at every run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import UnsupportedCompilationError

from monitor import ingest
from monitor.alerts import feedback, gate, outbox
from monitor.store import driver, terms
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
