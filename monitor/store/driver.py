"""Hot statements run on the driver's cursor, compiled once (issue 15).

For the statements run for every delivery and every stored article, SQLAlchemy's execution
(parameter and result processing, events, the result object) cost several times the driver's
CPU (a delivery's claim on PostgreSQL: 0.35 against 0.12 ms; on SQLite 0.2 against 0.03 ms a
statement). ``run``, ``rows`` and ``run_many`` take a statement built once (a module-level
constant or a cached one; Core or ``text()``, without expanding parameters), compile it once per
dialect, and run it on the driver's cursor inside the caller's transaction, doing what
``Connection.execute`` does for it:

- parameters and result columns go through SQLAlchemy's own processors for their types
  (``ErrorText``'s redaction, SQLite's datetimes and JSON; psycopg binds and loads aware
  datetimes and JSON itself, as SQLAlchemy lets it);
- strings are cleaned as ``store.db`` cleans every statement's (``clean_params``);
- a write counts for ``store.db``'s write health; a driver error is raised as SQLAlchemy's
  (its connection invalidated when the server is gone), and recorded there too.

On another driver they are ``Connection.execute``. SQLAlchemy's private attributes are read
here (``_bind_processors``, ``_result_columns``): re-run the outbox, ingest and story tests on an
upgrade of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, TextualSelect
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.sql.compiler import Compiled

from monitor.store.db import clean_params, write_failed, wrote

T = TypeVar("T")
DRIVERS = ("psycopg", "pysqlite")  # drivers whose cursor this module drives


@dataclass(frozen=True)
class Precompiled:
    """A statement compiled for one dialect, as the driver's cursor takes it."""

    stmt: Any
    sql: str
    compiled: Compiled
    # The parameters' order (SQLite's qmark style), or None (psycopg takes them by name).
    order: tuple[str, ...] | None
    # SQLAlchemy's bind processors of its parameters: ErrorText's redaction, SQLite's datetimes.
    binds: tuple[tuple[str, Any], ...]
    # SQLAlchemy's result processors of its columns, (position, processor) of those that have
    # one (SQLite: datetimes, JSON); None on psycopg, which loads those types itself, as
    # SQLAlchemy lets it.
    results: tuple[tuple[int, Any], ...] | None
    returns_rows: bool  # (psycopg builds ``cursor.description`` anew at each look: ~20 us)
    writes: bool  # not a SELECT: it counts for the write health
    # Its parameters as the cursor takes them, in order: (name, key, default, required, bind
    # processor or None), what ``Compiled.construct_params`` and the processors do, worked out
    # once (~40 % of this module's CPU when done at every run); None: that is done at every run.
    plan: tuple[tuple[str, str, Any, bool, Any], ...] | None


_COMPILED: dict[tuple[int, str], Precompiled] = {}


def precompiled(conn: Connection, stmt: Any) -> Precompiled:
    key = (id(stmt), conn.dialect.name)
    done = _COMPILED.get(key)
    if done is None or done.stmt is not stmt:
        dialect = conn.dialect
        compiled = stmt.compile(dialect=dialect)
        assert "POSTCOMPILE" not in compiled.string, "an expanding parameter: run it with Connection.execute"
        # text().columns() knows the types of the columns it names, not their positions
        assert not isinstance(stmt, TextualSelect), "text().columns(): run it with Connection.execute"
        processors = compiled._bind_processors  # noqa: SLF001 (what SQLAlchemy's execution applies)
        results = None
        if dialect.driver != "psycopg":
            processors_of = (c.type._cached_result_processor(dialect, None)  # noqa: SLF001
                             for c in compiled._result_columns)  # noqa: SLF001
            results = tuple((i, f) for i, f in enumerate(processors_of) if f is not None)
        order = tuple(compiled.positiontup) if compiled.positional else None
        done = _COMPILED[key] = Precompiled(stmt, compiled.string, compiled, order,
                                            tuple(processors.items()), results,
                                            _returns_rows(compiled),
                                            compiled.string.lstrip()[:6].upper() != "SELECT", _plan(compiled))
    return done


def _plan(compiled: Any) -> tuple[tuple[str, str, Any, bool, Any], ...] | None:
    """``Precompiled.plan``; None for what the plan does not do as ``construct_params`` would:
    escaped parameter names, a parameter whose value is computed at each run (``callable_``)."""
    if compiled.escaped_bind_names:
        return None
    names = compiled.positiontup if compiled.positional else list(dict.fromkeys(compiled.bind_names.values()))
    if names is None:
        return None
    # the statement's own values (a LIMIT 1, a literal compared with), as every run has them
    defaults = compiled.construct_params({}, _check=False)
    collected = getattr(compiled, "_collected_params", None) or {}
    processors = compiled._bind_processors  # noqa: SLF001
    plan = []
    for name in names:
        bp = compiled.binds[name]
        if bp.callable is not None:
            return None
        plan.append((name, bp.key, defaults.get(name), bp.required and name not in collected, processors.get(name)))
    return tuple(plan)


def _returns_rows(compiled: Compiled) -> bool:
    """A Core statement knows its result columns; a ``text()`` one without ``.columns()`` is
    read from its SQL: a SELECT, or a write with RETURNING."""
    sql = compiled.string.lstrip().upper()
    return bool(compiled._result_columns) or sql.startswith(("SELECT", "WITH")) or " RETURNING " in sql  # noqa: SLF001


def _bound(prepared: Precompiled, params: Mapping[str, Any]) -> Any:
    if prepared.plan is not None:
        out = []
        for name, key, default, required, process in prepared.plan:
            if key in params:
                value = params[key]
            elif name in params:
                value = params[name]
            elif required:
                raise InvalidRequestError(f"A value is required for bind parameter {key!r}")
            else:
                value = default
            out.append(value if process is None else process(value))
        return out if prepared.order is not None else dict(zip((p[0] for p in prepared.plan), out, strict=True))
    values = prepared.compiled.construct_params(params)
    assert values is not None
    for name, process in prepared.binds:
        if name in values:
            values[name] = process(values[name])
    return values if prepared.order is None else [values[n] for n in prepared.order]


def _processed(prepared: Precompiled, row: Sequence[Any]) -> Sequence[Any]:
    if not prepared.results:
        return row
    values = list(row)
    for i, process in prepared.results:
        values[i] = process(values[i])
    return values


def _on_cursor(conn: Connection, prepared: Precompiled, bound: Any, use: Callable[[Any], T], many: bool = False) -> T:
    """``use(cursor)`` after running the statement with ``bound`` (cleaned here), within
    SQLAlchemy's transaction: on SQLite the driver begins it before the first write itself, as
    under ``Connection.execute``, and the caller's commit ends it."""
    bound = clean_params(bound)
    raw = conn.connection.driver_connection
    assert raw is not None
    error = conn.dialect.loaded_dbapi.Error
    try:
        cursor = raw.cursor()
        try:
            if many:
                cursor.executemany(prepared.sql, bound)
            else:
                cursor.execute(prepared.sql, bound)
            result = use(cursor)
        finally:
            cursor.close()
    except error as exc:
        gone = conn.dialect.is_disconnect(exc, raw, None)
        if gone:
            conn.invalidate(exc)
        failed = DBAPIError.instance(prepared.sql, bound, exc, error, connection_invalidated=gone,
                                     dialect=conn.dialect)
        write_failed(conn.engine, failed)
        raise failed from exc
    if prepared.writes:
        wrote(conn)
    return result


def run(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> tuple[int, Sequence[Any] | None]:
    """(rows changed, the first row returned or None) of ``stmt``."""
    if conn.dialect.driver not in DRIVERS:
        res = conn.execute(stmt, params)
        return res.rowcount, res.first() if res.returns_rows else None
    prepared = precompiled(conn, stmt)
    count, row = _on_cursor(conn, prepared, _bound(prepared, params), lambda cur: (
        cur.rowcount, cur.fetchone() if prepared.returns_rows else None))
    return count, None if row is None else _processed(prepared, row)


def rows(conn: Connection, stmt: Any, params: Mapping[str, Any]) -> list[Sequence[Any]]:
    """Every row ``stmt`` returns (a Core SELECT, or a ``text()`` one whose columns need no
    processing: not ``.columns()``)."""
    if conn.dialect.driver not in DRIVERS:
        return list(conn.execute(stmt, params).all())
    prepared = precompiled(conn, stmt)
    found = _on_cursor(conn, prepared, _bound(prepared, params), lambda cur: cur.fetchall())
    return [_processed(prepared, r) for r in found] if prepared.results else found


def run_many(conn: Connection, stmt: Any, params: Sequence[Mapping[str, Any]]) -> None:
    """``stmt`` (a write returning nothing) once for each of ``params``, in one executemany."""
    if not params:
        return
    if conn.dialect.driver not in DRIVERS:
        conn.execute(stmt, list(params))
        return
    prepared = precompiled(conn, stmt)
    _on_cursor(conn, prepared, [_bound(prepared, p) for p in params], lambda cur: None, many=True)
