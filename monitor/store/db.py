"""Engine creation and schema upgrades.

SQLite gets WAL and a busy timeout so the CLI can read while the daemon writes. The schema is
made by Alembic migrations, so existing databases upgrade in place; a new SQLite database is made
from the schema they leave (``monitor.store.snapshot``), which a test keeps equal to theirs.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError

if TYPE_CHECKING:
    from sqlmodel import Session

from monitor.clean import clean_text, redact

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
log = logging.getLogger(__name__)
# PostgreSQL: commits on one connection that return without waiting for the WAL flush, and back.
_ASYNC_COMMIT = text("SET synchronous_commit = off")
_SYNC_COMMIT = text("RESET synchronous_commit")


def commit_without_flush(conn: Connection) -> None:
    """PostgreSQL: from now on ``conn``'s commits return without waiting for the WAL flush (this
    session only), for writes whose loss in a crash of the server only repeats work (the poll
    records, the delivery bookkeeping). ``flush_commits_again`` undoes it before the connection
    goes back to the pool, whose other users must flush. On a connection not in autocommit,
    the caller commits for the setting to last."""
    conn.execute(_ASYNC_COMMIT)


def flush_commits_again(conn: Connection, name: str) -> None:
    """Undo ``commit_without_flush`` before ``conn`` is closed (back into the pool). One that
    cannot be reset is invalidated, so it is discarded rather than pooled; one already
    invalidated (its server gone) has no session left to reset, and is discarded anyway."""
    if conn.invalidated:
        return
    try:
        conn.rollback()  # whatever a failure left open
        conn.execute(_SYNC_COMMIT)
        conn.commit()
    except Exception:  # never back into the pool without synchronous commit
        log.warning("%s: could not reset its connection (synchronous_commit); closing it", name, exc_info=True)
        conn.invalidate()


def _clean_value(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def clean_params(params: Any) -> Any:
    """Clean every string in a statement's parameters: a mapping, a sequence, or a sequence of
    either (executemany; insertmanyvalues passes one mapping even then).

    Almost always there is nothing to clean, and walking the values in Python cost more than
    the statement (a batch of poll records: ~40 % of its CPU, issue 15). ``repr`` walks them in
    C and spells NUL and every surrogate as an escape: without one, no string needs cleaning
    (a string holding such an escape's text only takes the slow way, with the same result)."""
    shown = repr(params)
    if "\\x00" not in shown and "\\ud" not in shown:
        return params
    if isinstance(params, Mapping):
        return {k: _clean_value(v) for k, v in params.items()}
    if isinstance(params, list | tuple):
        return type(params)(clean_params(v) if isinstance(v, Mapping | list | tuple) else _clean_value(v)
                            for v in params)
    return params


def _storable_text(engine: Engine) -> None:
    """The last gate before the database: no statement carries NUL or a lone surrogate, which
    PostgreSQL (NUL) and both drivers (surrogates) refuse, failing the whole transaction."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _clean(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> tuple[str, Any]:
        return statement, clean_params(parameters)


class WriteHealth:
    """Whether the database takes writes: the last write error (disk full, read-only file,
    connection lost) until a commit succeeds again. A SELECT 1 answers on a full disk; this is
    what /readyz reports instead."""

    def __init__(self) -> None:
        self.failing_since: float | None = None
        self.error = ""

    def ready(self) -> tuple[bool, str]:
        if self.failing_since is None:
            return True, "writes ok"
        ago = time.monotonic() - self.failing_since
        return False, f"database writes failing for {ago:.0f} s: {self.error}"


_HEALTH: weakref.WeakKeyDictionary[Engine, WriteHealth] = weakref.WeakKeyDictionary()


def write_health(engine: Engine) -> WriteHealth:
    health = _HEALTH.get(engine)
    if health is None:
        health = _HEALTH[engine] = WriteHealth()
    return health


def _watch_writes(engine: Engine) -> None:
    health = write_health(engine)

    def is_write(statement: str | None) -> bool:
        return (statement or "").lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE")

    @event.listens_for(engine, "handle_error")
    def _failed(ctx: Any) -> None:
        if ctx.statement is None or is_write(ctx.statement):
            write_failed(engine, ctx.sqlalchemy_exception)

    @event.listens_for(engine, "after_cursor_execute")
    def _wrote(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if is_write(statement):
            wrote(conn)

    @event.listens_for(engine, "commit")
    def _committed(conn: Any) -> None:
        if conn.info.pop("wrote", False):
            health.failing_since = None


def write_failed(engine: Engine, exc: BaseException) -> None:
    """A write (or commit) on ``engine`` failed with ``exc``: the database's write health says
    so, until a commit succeeds again. Operational errors only: a duplicate (IntegrityError) is
    the store working as meant."""
    if isinstance(exc, OperationalError):
        health = write_health(engine)
        if health.failing_since is None:
            health.failing_since = time.monotonic()
        health.error = first_line(exc)[:200]


def wrote(conn: Connection) -> None:
    """``conn`` wrote: its next commit shows the database takes writes again (a statement run
    on the driver's own cursor says so itself; SQLAlchemy's are seen by ``_watch_writes``)."""
    conn.info["wrote"] = True


# Where each engine's URL was written (``DatabaseURL.origin``, the config file), for its errors.
_ORIGINS: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def create_db_engine(url: str) -> Engine:
    engine = _create_engine(url)
    if origin := getattr(url, "origin", ""):
        _ORIGINS[engine] = origin
    _storable_text(engine)
    _watch_writes(engine)
    return engine


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def run_migrations(conn: Connection, revision: str = "heads") -> None:
    """Alembic's upgrade to ``revision`` on ``conn``."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def _new_sqlite(conn: Connection) -> bool:
    """A SQLite database without a single table: a new one."""
    return conn.dialect.name == "sqlite" and conn.execute(
        text("SELECT count(*) FROM sqlite_master WHERE type = 'table'")).scalar() == 0


def upgrade(engine: Engine, revision: str = "heads", snapshot: bool = True) -> None:
    """Bring the schema up to date (idempotent).

    "heads": each area (fetch, dedup, delivery, ...) may add its own migration branching from the
    initial schema, and all of them are applied. A new SQLite database is made from the schema
    those leave (``monitor.store.snapshot``, unless ``snapshot`` is False) when it is current.
    """
    heads = script_heads() if revision == "heads" else None
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several instances starting at once on one database: one migrates, the others wait
                # for it and then find nothing left to do (the lock ends with the transaction).
                conn.execute(text("SELECT pg_advisory_xact_lock(701701)"))
            if heads is None or applied(conn) != heads:  # up to date: no Alembic import (0.11 s)
                from monitor.store import snapshot as schema_snapshot

                if not (snapshot and heads is not None and _new_sqlite(conn) and schema_snapshot.create(conn, heads)):
                    run_migrations(conn, revision)
            # Every caller goes on to write: a database that refuses writes (a read-only file or
            # directory, a standby server, a role without UPDATE) says so now, by name, not as a
            # traceback from the first article or delivery. Writing the version it holds changes
            # nothing.
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except DBAPIError as exc:
        refused = not_writable(str(engine.url), exc) or unusable(engine, exc)
        if refused is None:
            raise
        raise refused from None


_READ_ONLY = ("readonly database", "read-only", "unable to open database file", "permission denied",
              "attempt to write")


class DatabaseNotWritable(Exception):
    """The database refuses writes; the message names it and says what to do."""


class DatabaseUnusable(DatabaseNotWritable):
    """The database cannot be used at all: nothing answers at its address, it refuses the
    connection, or the SQLite file is not a database. A ``DatabaseNotWritable`` for its callers
    (the daemon's start, ``run --once``, every command), which stop with its one line: it was
    a 140-line SQLAlchemy traceback that named neither the config nor the entry."""


# The drivers' words for "no connection" (psycopg: "connection failed: connection to server at
# ... failed: Connection refused"; a name that does not resolve; a password refused) and for a
# file that is not SQLite's (random bytes, another program's file, a truncated copy).
_NO_CONNECTION = ("connection failed", "connection refused", "connection to server", "could not connect",
                  "failed to resolve host", "could not translate host", "timeout expired", "connection timed out",
                  "server closed the connection")
_NOT_A_DATABASE = ("file is not a database", "database disk image is malformed")


def unusable(engine: Engine, exc: DBAPIError) -> DatabaseUnusable | None:
    """A DatabaseUnusable for ``exc`` if it says the database cannot be reached or is no
    database, else None (any other error is the caller's). The message names the config file
    and its ``[monitor] database`` entry (password masked), then what failed."""
    reason = " ".join(first_line(exc).split())
    lowered = reason.lower()
    url = engine.url
    origin = _ORIGINS.get(engine)
    entry = (f"{origin}: " if origin else "") + f"[monitor] database {url.render_as_string(hide_password=True)}"
    if url.get_backend_name() == "sqlite" and any(m in lowered for m in _NOT_A_DATABASE):
        path = Path(url.database or "").resolve()
        return DatabaseUnusable(f"{entry}: not a database file at {path} ({reason}): restore it from a backup, "
                                f"or move it away and `monitor db upgrade` creates an empty one")
    if not any(m in lowered for m in _NO_CONNECTION):
        return None
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "connection refused" in lowered:
        return DatabaseUnusable(f"{entry}: connection refused at {where}: is the database server running "
                                f"and listening there?")
    # What the server or the network said (a password refused, a name that does not resolve):
    # psycopg's first line, without its "connection failed: " prefix; the password is in no part of it.
    said = re.sub(r"^connection failed:\s*", "", reason, flags=re.I)
    if "server closed the connection" in lowered:  # lost while migrating: the server stopped
        return DatabaseUnusable(f"{entry}: the connection to {where} was lost ({redact(said)})")
    return DatabaseUnusable(f"{entry}: cannot connect to {where}: {redact(said)}")


def not_writable(url: str, exc: BaseException) -> DatabaseNotWritable | None:
    """A DatabaseNotWritable for ``exc`` if it is the database refusing writes, else None."""
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    if not any(m in reason.lower() for m in _READ_ONLY):
        return None
    return DatabaseNotWritable(database_not_writable_message(url, reason))


def database_not_writable_message(url: str, reason: str) -> str:
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):].split("?", 1)[0]).resolve()
        if not path.parent.is_dir():
            return f"the database file {path} cannot be created: its directory {path.parent} does not exist"
        return (f"the database file {path} cannot be written ({reason}). monitor writes to it and "
                f"creates {path.name}-wal, {path.name}-shm and {path.name}.lock beside it: make the file "
                f"and its directory {path.parent} writable by the user running monitor (e.g. "
                f"`chmod u+w {path} {path.parent}`, or `chattr -i` if it was made immutable), or point "
                f"[monitor] database at a writable file")
    shown = make_url(url).render_as_string(hide_password=True)
    return (f"the database {shown} refuses writes ({reason}): connect to a server that accepts writes "
            f"(not a standby) as a role allowed to INSERT, UPDATE and DELETE on monitor's tables")


_REVISION = re.compile(r"""^revision(?:: [^=]+)? = ["']([\w-]+)["']$""", re.M)
_DOWN = re.compile(r"""^down_revision(?:: [^=]+)? = (?:None|["']([\w-]+)["'])$""", re.M)
_NO_DEPENDS = re.compile(r"^depends_on(?:: [^=]+)? = None$", re.M)


def script_heads() -> frozenset[str] | None:
    """The newest revision of each branch of ``migrations/versions``, read from the scripts'
    ``revision``/``down_revision`` lines without importing Alembic, so a start on an up-to-date
    database skips it. None (Alembic decides) when a script is not of that plain kind: a merge,
    ``depends_on``, anything the patterns do not read. tests/test_cli.py compares the result
    with Alembic's own heads."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        if script.name.startswith("__"):
            continue
        source = script.read_text(encoding="utf-8")
        rev, down = _REVISION.findall(source), _DOWN.findall(source)
        if len(rev) != 1 or len(down) != 1 or not _NO_DEPENDS.search(source):
            return None
        revisions.add(rev[0])
        if down[0]:
            parents.add(down[0])
    return frozenset(revisions - parents) or None


def applied(conn: Connection) -> frozenset[str]:
    """The revisions the database's ``alembic_version`` holds (none without the table)."""
    if not inspect(conn).has_table("alembic_version"):
        return frozenset()
    return frozenset(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))


class SchemaOutdated(Exception):
    """The database's schema is older than this program's (or absent): run ``monitor db upgrade``."""


def check_schema(engine: Engine) -> None:
    """Raise SchemaOutdated unless every migration this program knows has been applied.

    Read-only commands call this instead of ``upgrade``: looking at data must never change the
    schema behind the back of a daemon (or a second version) using the same database.
    """
    wanted = script_heads()
    if wanted is None:
        from alembic.config import Config as AlembicConfig
        from alembic.script import ScriptDirectory

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        wanted = frozenset(ScriptDirectory.from_config(cfg).get_heads())
    try:
        with engine.connect() as conn:
            current = applied(conn)
    except DBAPIError as exc:
        problem = unusable(engine, exc)
        if problem is None:
            raise
        raise problem from None
    if not current:
        raise SchemaOutdated("the database has no monitor schema yet: run `monitor db upgrade` "
                             "(or `monitor run`, which does it on start)")
    if current != wanted:
        raise SchemaOutdated("the database schema is older than this version of monitor: "
                             "run `monitor db upgrade`")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error. (SQLModel, and with it
    the ORM and pydantic, is imported by the first session: the daemon's first poll needs none,
    see ``monitor.store.source_table``.)"""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# The drivers' codes for the refusals a caller treats differently (the messages differ by
# backend and version): PostgreSQL's SQLSTATE (psycopg), SQLite's extended result code name.
_REFUSALS = {"23505": "unique", "23503": "foreign_key", "40P01": "conflict", "40001": "conflict",
             "SQLITE_CONSTRAINT_UNIQUE": "unique", "SQLITE_CONSTRAINT_PRIMARYKEY": "unique",
             "SQLITE_CONSTRAINT_FOREIGNKEY": "foreign_key"}


def first_line(exc: BaseException) -> str:
    """The first line of the database's own message for an error (the driver's exception, under
    SQLAlchemy's wrapper whose text goes on with the statement and its values), or its type's
    name when it has none: one line for a log or /readyz, without the SQL."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).splitlines() or [type(orig).__name__])[0]


def refusal(exc: DBAPIError) -> str:
    """Which rule of the database refused a statement: "unique" (the row exists already),
    "foreign_key" (a row it points at does not exist: deleted meanwhile by another
    transaction, say), "conflict" (PostgreSQL aborted the transaction to end a deadlock or a
    serialization failure: run again, it may well pass), "" for any other."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    return _REFUSALS.get(code or "", "")


def refused_table(exc: DBAPIError) -> str | None:
    """The table whose rule refused a statement, where the driver says (PostgreSQL's
    diagnostics; SQLite's message "UNIQUE constraint failed: article.url")."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:
        return getattr(diag, "table_name", None)
    m = re.search(r"constraint failed: (\w+)\.", str(orig))
    return m.group(1) if m else None


# Errors of the database itself, not of what was written: they pass by waiting (a lost
# connection, a server shutting down or out of room, a lock held by another writer) or once an
# operator mends them (a read-only file, a standby server, a role without the right: what
# ``not_writable`` names). PostgreSQL SQLSTATE classes and codes; SQLite's primary result codes
# (the extended names start with them).
_TRANSIENT_PG = ("08", "53", "57P0", "55P03", "40", "25006", "42501")
_TRANSIENT_SQLITE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN",
                     "SQLITE_PROTOCOL", "SQLITE_READONLY", "SQLITE_PERM")


def transient(exc: DBAPIError) -> bool:
    """Whether a refused statement may pass when run again later: the database's state, not the
    values written (a URL too long for its index, a statement timeout on a huge row: those fail
    the same way every time, and a caller that waited for them would wait forever). An error the
    driver gave no code is a lost connection."""
    orig = exc.orig
    name = getattr(orig, "sqlite_errorname", None)
    if name is not None:
        return name.startswith(_TRANSIENT_SQLITE)
    state = getattr(orig, "sqlstate", None)
    return state is None or state.startswith(_TRANSIENT_PG)
