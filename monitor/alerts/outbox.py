"""The outbox: alerts and their deliveries, written in the caller's transaction, and the state
machine a delivery moves through.

    pending ──claim──> sending ──accepted──> sent
       ^                  │ └──refused──> failed (next_attempt_at) ──due──> sending ...
       │                  │                 └── too many attempts / too old ──> dead
       └── lease expired ─┘   (the instance that claimed it died: another one takes it over)
    digest (held for the digest due at digest_due_at) ──> batched (inside a digest delivery)
    pending, never tried (held: ``alert_hold``) ──its story merged with one that alerted──> merged
       (``monitor.alerts.settle``; digest_id: the delivery that carries the event on its channel)

Claims are one UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) ... RETURNING, so two
instances on one PostgreSQL never claim the same row, and on SQLite the single statement is
atomic. A claim carries the claimer's name and a lease expiry: when a process dies (SIGKILL,
power loss) its in-flight delivery is taken over once the lease ends. That delivery may then be
sent twice (the channel accepted it but the process died before recording it), which is why the
promise is at-least-once, with every other alert sent exactly once, and why every message carries
a stable id (Idempotency-Key, Message-ID, Matrix transaction id) for the receiver to drop repeats.
On PostgreSQL the worker writes claims and outcomes without waiting for the WAL flush; why that
can repeat an alert after a crash of the server but never lose one: ``Deliverer._ledger``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    DateTime,
    Insert,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    text,
    true,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError, NoResultFound
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlmodel import Session, col, select

from monitor.alerts.payload import MatchPayload, NoticePayload, StatementPayload, dump_payload
from monitor.match import RuleMatch
from monitor.store.driver import run as run_on_driver
from monitor.store.driver import run_many
from monitor.store.models import (
    OPEN_DELIVERY_STATUSES,
    Alert,
    Article,
    Delivery,
    Match,
    Source,
    installation_id,
)

if TYPE_CHECKING:  # the gate (speaker patterns, stories, NumPy) is not needed to deliver
    from monitor.alerts.gate import Verdict

STATUSES = ("pending", "sending", "sent", "failed", "dead", "digest", "batched", "merged")


def _match_values(article_id: int, match: RuleMatch, now: datetime) -> dict[str, Any]:
    """The one place a ``match`` row is built: hits, statements, where and who, the quote."""
    return {"article_id": article_id, "rule": match.rule, "hits": [asdict(h) for h in match.hits],
            "statements": [asdict(s) for s in match.statements], "created_at": now,
            "field": match.field, "speaker": match.speaker, "quote": match.quote}


@lru_cache(maxsize=1)
def _inserts() -> tuple[Insert, Insert]:
    """The match and alert INSERT ... RETURNING id, built once: Core statements, not ORM objects
    and flushes, which cost more than the inserts themselves (issue 15); run on the driver
    (``monitor.store.driver``), with the columns ``_match_values`` and ``_add_alert`` write."""
    m, a = Match.__table__, Alert.__table__  # type: ignore[attr-defined]
    return (insert(m).values({n: bindparam(n) for n in _MATCH_COLUMNS}).returning(m.c.id),
            insert(a).values({n: bindparam(n) for n in _ALERT_COLUMNS}).returning(a.c.id))


_MATCH_COLUMNS = ("article_id", "rule", "hits", "statements", "created_at", "field", "speaker", "quote")
_ALERT_COLUMNS = ("key", "match_id", "rule", "kind", "payload", "created_at")


# A delivery's key (``delivery_key``) with the installation id read by the insert itself.
_DELIVERY = text(
    "INSERT INTO delivery (key, alert_id, channel, status, attempts, next_attempt_at, created_at) "
    "SELECT COALESCE(NULLIF((SELECT uid FROM installation LIMIT 1), '') || ':', '') || :key, :alert, :channel, "
    "'pending', 0, :due, :now").bindparams(bindparam("now", type_=DateTime(timezone=True)),
                                         bindparam("due", type_=DateTime(timezone=True)))


def record_match(session: Session, article_id: int, match: RuleMatch, now: datetime | None = None) -> int:
    """Store a ``match`` row; its id."""
    return _new_id(session, _inserts()[0], _match_values(article_id, match, now or datetime.now(UTC)))


def _new_id(session: Session, stmt: Insert, values: dict[str, Any]) -> int:
    row = run_on_driver(session.connection(), stmt, values)[1]
    if row is None:
        raise NoResultFound("the insert returned no id")
    return int(row[0])


def enqueue(session: Session, article: Article, source: Source, verdict: Verdict,
            channels: tuple[str, ...], reread: int = 0, hold: float = 0.0) -> int:
    """The gate's verdict into the outbox: the match row, and the alert with its deliveries when
    the verdict alerts; the match's id. Caller owns the transaction; nothing is sent here.

    ``reread``: the article was read again after its entry changed (its ``reread_count``): its
    match of the rule, if recorded before, is brought up to date, and an alert gets a key of
    its own (the article may have alerted for the rule before). ``hold``: seconds the alert's
    deliveries wait before they are due (``[monitor] alert_hold``), so that a story that merges
    with another meanwhile sends one alert (``monitor.alerts.settle``)."""
    assert article.id is not None
    now = datetime.now(UTC)
    match_id = (record_match(session, article.id, verdict.match, now) if not reread
                else _rerecord_match(session, article.id, verdict.match, now))
    if verdict.alert:
        _add_alert(session, article, source, match_id, verdict.match, channels, now,
                   key=f"{verdict.match.rule}:{article.id}" + (f":r{reread}" if reread else ""), updated=bool(reread),
                   hold=hold)
    return match_id


def _rerecord_match(session: Session, article_id: int, match: RuleMatch, now: datetime) -> int:
    """The article's ``match`` row for ``match.rule`` rewritten with what it matches now (its
    first time kept), or a new one."""
    m = Match.__table__  # type: ignore[attr-defined]
    conn = session.connection()
    values = _match_values(article_id, match, now)
    found = conn.execute(core_select(m.c.id).where(m.c.article_id == article_id, m.c.rule == match.rule)).first()
    if found is None:
        return record_match(session, article_id, match, now)
    values.pop("created_at")
    conn.execute(update(m).where(m.c.id == found[0]).values(values))
    return int(found[0])


def enqueue_alert(session: Session, article: Article, source: Source, match: RuleMatch,
                  channels: tuple[str, ...]) -> Alert:
    """A match that alerts (no gate): its row, the alert and its deliveries, in the caller's
    transaction. The alert returned is not added to the session (its row is written)."""
    assert article.id is not None
    now = datetime.now(UTC)
    match_id = record_match(session, article.id, match, now)
    values = _add_alert(session, article, source, match_id, match, channels, now)
    return Alert(**values)


def _add_alert(session: Session, article: Article, source: Source, match_id: int, match: RuleMatch,
               channels: tuple[str, ...], now: datetime, key: str | None = None,
               updated: bool = False, hold: float = 0.0) -> dict[str, Any]:
    """Write the alert and its deliveries; the alert row's values."""
    assert article.id is not None
    payload = MatchPayload(
        rule=match.rule, article_id=article.id, title=article.title, url=article.url, outlet=source.name,
        published=article.published.astimezone(UTC).isoformat() if article.published else None,
        statements=tuple(StatementPayload.of(s) for s in match.statements),
        speaker=match.speaker, speaker_entity=match.speaker_entity, speaker_display=match.speaker_display,
        terms=tuple(sorted({h.text for h in match.hits})),
        updated=article.reread_at.astimezone(UTC).isoformat() if updated and article.reread_at else None,
    )
    values: dict[str, Any] = {"key": key or f"{match.rule}:{article.id}", "match_id": match_id, "rule": match.rule,
                              "kind": "match", "payload": dump_payload(payload), "created_at": now}
    values["id"] = _new_id(session, _inserts()[1], values)
    _add_deliveries(session, values["key"], values["id"], channels, now, hold)
    return values


def enqueue_notice(session: Session, channels: tuple[str, ...] | list[str], subject: str, text: str,
                   key: str) -> Alert | None:
    """A non-rule message (source broken/recovered/gone) through the same durable outbox.

    ``key`` makes it idempotent: the same key twice is one notice. Caller owns the transaction.
    Returns None when a notice with this key already exists.
    """
    full_key = f"notice:{key}"
    if session.exec(select(Alert.id).where(Alert.key == full_key)).first() is not None:
        return None
    alert = Alert(key=full_key, match_id=None, rule="", kind="notice",
                  payload=dump_payload(NoticePayload(subject=subject, text=text)))
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
            assert alert.id is not None
            _add_deliveries(session, alert.key, alert.id, tuple(channels))
    except IntegrityError:  # another instance wrote the same notice meanwhile
        return None
    return alert


def delivery_key(session: Session, alert_key: str, channel: str) -> str:
    """``installation:alert:channel``: stable across retries of one delivery (Idempotency-Key and
    Message-ID derive from it), never the same for another database (a reset, a second deployment),
    so receivers that drop repeats never drop a real alert."""
    uid = installation_id(session)
    return f"{uid}:{alert_key}:{channel}" if uid else f"{alert_key}:{channel}"


def _add_deliveries(session: Session, alert_key: str, alert_id: int, channels: tuple[str, ...],
                    now: datetime | None = None, hold: float = 0.0) -> None:
    """One pending delivery per channel, keyed as ``delivery_key`` says (one statement), due
    ``hold`` seconds from now."""
    if channels:
        now = now or datetime.now(UTC)
        due = now + timedelta(seconds=hold) if hold > 0 else now
        run_many(session.connection(), _DELIVERY, [{"key": f"{alert_key}:{ch}", "alert": alert_id, "channel": ch,
                                                    "now": now, "due": due} for ch in dict.fromkeys(channels)])


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for sending: what the worker needs of its row and of its alert (read
    by the claim itself, RETURNING, instead of loading either afterwards: on PostgreSQL each
    statement is a round trip to the server, which under load costs more than building the
    message does)."""

    id: int
    key: str
    alert_id: int
    channel: str
    attempts: int
    created_at: datetime
    alert_kind: str
    alert_rule: str
    alert_payload: dict[str, Any]
    alert_created_at: datetime
    # (outlet, language) of the other outlets' articles of the alert's story, in first-seen order
    # (``monitor.story.reported.also_reported_by``'s rows); None when the claim did not read them.
    reported_by: list[tuple[str, str | None]] | None = None

    @classmethod
    def of(cls, row: Any) -> Claimed:
        """From a claim's RETURNING row (its JSON "reported by" triples put in order)."""
        if len(row) > _CLAIMED_COLUMNS:
            from monitor.story.reported import json_rows

            return cls(*row[:_CLAIMED_COLUMNS], reported_by=json_rows(row[_CLAIMED_COLUMNS]))  # type: ignore[misc]
        return cls(*row)


_CLAIMED_COLUMNS = len(fields(Claimed)) - 1  # Claimed's fields before ``reported_by``, its last


def _connection(db: Session | Connection) -> Connection:
    """The connection of ``db``: a Session's (begun), or ``db`` itself (the delivery worker's
    bookkeeping runs on its connection, without a Session's machinery per delivery)."""
    return db if isinstance(db, Connection) else db.connection()


def _deliveries() -> Table:
    return Delivery.__table__  # type: ignore[attr-defined]


_CLAIMS: dict[tuple[bool, bool, tuple[str, ...] | None, bool], Any] = {}
_RELEASES: dict[tuple[str, ...], Any] = {}


def _reported_by(t: Table) -> Any:
    """``reported.also_reported_by``'s rows for the claimed delivery's alert, as one JSON array
    read by the claim itself (a statement less per delivery); the same query
    (``monitor.story.reported``) in its JSON shape."""
    from monitor.story.reported import reported_by

    a, m = Alert.__table__, Match.__table__  # type: ignore[attr-defined]
    article = (core_select(m.c.article_id).select_from(m.join(a, a.c.match_id == m.c.id))
               .where(a.c.id == t.c.alert_id).correlate(t).scalar_subquery())
    return _Qualified(reported_by(article, as_json=True).scalar_subquery()).label("reported_by")


class _Qualified(ColumnElement[Any]):
    """A subquery with its columns' table names. SQLite's compiler writes the RETURNING clause
    without them, into its subqueries too, where a join of two tables then reads ``id = source_id``
    (ambiguous); SQLite itself takes the names there."""

    inherit_cache = True
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]

    def __init__(self, inner: ColumnElement[Any]) -> None:
        self.inner = inner
        self.type = inner.type


@compiles(_Qualified)
def _qualified(element: _Qualified, compiler: Any, **kw: Any) -> str:
    kw.pop("include_table", None)
    return str(compiler.process(element.inner, **kw))


def _claim_statement(by_channel: bool, excluding: bool, recording: tuple[str, ...] | None = None,
                     reported_by: bool = False) -> Any:
    """The claim statement of one shape, built once with bound parameters (building it cost more
    CPU than running it: issue 15). ``recording``: the columns of ``release``, run in the same
    statement for the delivery just sent (``record_and_claim``, PostgreSQL); ``reported_by``:
    also read the story's other outlets."""
    key = (by_channel, excluding, recording, reported_by)
    stmt = _CLAIMS.get(key)
    if stmt is None:
        t = _deliveries()
        now = bindparam("now", type_=DateTime(timezone=True))
        # Statuses as literals: a list in ``in_`` is an "expanding" parameter, which SQLAlchemy
        # renders into the statement again at every execution (~5 % of a claim's CPU).
        due = or_(and_(t.c.status.in_([literal_column("'pending'"), literal_column("'failed'")]),
                       or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now)),
                  and_(t.c.status == literal_column("'sending'"), t.c.lease_expires_at < now))
        # ``due`` implies the delivery is open; said again in the partial index's own words
        # (literal values, not parameters), SQLite reads the channel's open deliveries in id
        # order from ``ix_delivery_open`` instead of sorting every due row for each claim.
        sub = core_select(t.c.id).where(due, t.c.status.in_([literal_column(f"'{s}'") for s in OPEN_DELIVERY_STATUSES]))
        if by_channel:
            sub = sub.where(t.c.channel == bindparam("b_channel"))
        if excluding:
            sub = sub.where(t.c.channel.not_in(bindparam("exclude", expanding=True)))
        if recording is not None:  # one statement updates a row once: never the one recorded
            sub = sub.where(t.c.id != bindparam("b_id"))
        sub = sub.order_by(t.c.id).limit(1).with_for_update(skip_locked=True)
        a = Alert.__table__  # type: ignore[attr-defined]
        alert = [core_select(a.c[name]).where(a.c.id == t.c.alert_id).scalar_subquery().label(f"alert_{name}")
                 for name in ("kind", "rule", "payload", "created_at")]
        # ``id = (...)``, not ``id IN (...)``: with IN, SQLite's planner searched the outer
        # ``due`` through ix_delivery_due (every due row again) instead of the one id.
        stmt = (update(t).where(t.c.id == sub.scalar_subquery(), due)
                .values(status="sending", lease_owner=bindparam("owner"), lease_expires_at=bindparam("until"))
                .returning(t.c.id, t.c.key, t.c.alert_id, t.c.channel, t.c.attempts, t.c.created_at, *alert,
                           *([_reported_by(t)] if reported_by else [])))
        if recording is not None:
            done = _release_statement(recording).returning(t.c.id).cte("done")
            claimed = stmt.cte("claimed")
            recorded = core_select(func.count().label("recorded")).select_from(done).subquery("recorded")
            stmt = core_select(recorded.c.recorded, *claimed.c).select_from(recorded.outerjoin(claimed, true()))
        _CLAIMS[key] = stmt
    return stmt


def _claim_params(owner: str, now: datetime, lease: float, exclude_channels: set[str] | frozenset[str],
                  channel: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"now": now, "owner": owner, "until": now + timedelta(seconds=lease)}
    if channel is not None:
        params["b_channel"] = channel
    if exclude_channels:
        params["exclude"] = sorted(exclude_channels)
    return params


def claim(session: Session | Connection, owner: str, now: datetime, lease: float,
          exclude_channels: set[str] | frozenset[str] = frozenset(), channel: str | None = None,
          reported_by: bool = True) -> Claimed | None:
    """Claim the oldest due delivery for ``owner`` (of ``channel`` only, if given), or None when
    nothing is due; ``reported_by``: read the story's other outlets with it."""
    params = _claim_params(owner, now, lease, exclude_channels, channel)
    stmt = _claim_statement(channel is not None, bool(exclude_channels), reported_by=reported_by)
    conn = _connection(session)
    # (A list of channels to exclude is an expanding parameter: SQLAlchemy renders it each time.)
    row = conn.execute(stmt, params).first() if exclude_channels else run_on_driver(conn, stmt, params)[1]
    return None if row is None else Claimed.of(row)


def record_and_claim(session: Session | Connection, delivery_id: int, values: dict[str, Any], owner: str, now: datetime,
                     lease: float, exclude_channels: set[str] | frozenset[str] = frozenset(),
                     channel: str | None = None) -> tuple[bool, Claimed | None]:
    """``release(delivery_id, owner, **values)`` and ``claim`` (with the story's other outlets)
    in the caller's transaction: one commit per delivery. On PostgreSQL one statement, so one
    round trip (data-modifying CTEs); SQLite lacks those, and runs the two statements.
    Returns whether the outcome was recorded (``release``'s answer) and the claimed delivery."""
    if channel is not None and channel not in exclude_channels:
        # The claim reads ``channel`` only: excluding others changes nothing (and a list would
        # be an expanding parameter, which the precompiled statement below cannot take).
        exclude_channels = frozenset()
    conn = _connection(session)
    if conn.dialect.name != "postgresql":
        recorded = release(session, delivery_id, owner, **values)
        return recorded, claim(session, owner, now, lease, exclude_channels, channel)
    names = tuple(sorted(values))
    params = {**_claim_params(owner, now, lease, exclude_channels, channel), "b_id": delivery_id, "b_owner": owner,
              **{f"v_{n}": v for n, v in values.items()}}
    stmt = _claim_statement(channel is not None, bool(exclude_channels), names, reported_by=True)
    row: Sequence[Any] | None = (conn.execute(stmt, params).one() if exclude_channels
                                 else run_on_driver(conn, stmt, params)[1])
    if row is None:
        raise NoResultFound("the claim statement returned no row")
    return bool(row[0]), None if row[1] is None else Claimed.of(row[1:])


def claim_next(session: Session, owner: str, now: datetime, lease: float,
               exclude_channels: set[str] | frozenset[str] = frozenset(),
               channel: str | None = None) -> int | None:
    """``claim``, for callers that need only the claimed delivery's id."""
    claimed = claim(session, owner, now, lease, exclude_channels, channel, reported_by=False)
    return None if claimed is None else claimed.id


def _release_statement(names: tuple[str, ...]) -> Any:
    stmt = _RELEASES.get(names)
    if stmt is None:
        t = _deliveries()
        stmt = _RELEASES[names] = (
            update(t).where(t.c.id == bindparam("b_id"), t.c.lease_owner == bindparam("b_owner"),
                            t.c.status == "sending")
            .values(lease_owner=None, lease_expires_at=None, **{n: bindparam(f"v_{n}") for n in names}))
    return stmt


def release(session: Session | Connection, delivery_id: int, owner: str, **values: Any) -> bool:
    """Record the outcome of a claimed delivery, only if ``owner`` still holds the claim."""
    count, _ = run_on_driver(_connection(session), _release_statement(tuple(sorted(values))),
                                {"b_id": delivery_id, "b_owner": owner, **{f"v_{n}": v for n, v in values.items()}})
    return bool(count)


def renew(session: Session | Connection, delivery_id: int, owner: str, until: datetime) -> bool:
    """Extend a claim to ``until``, only if ``owner`` still holds it (an expired claim nobody took
    over yet included); False when another instance took it over or it was recorded."""
    t = _deliveries()
    res = _connection(session).execute(
        update(t).where(t.c.id == delivery_id, t.c.lease_owner == owner, t.c.status == "sending")
        .values(lease_expires_at=until))
    return bool(res.rowcount)


def sent_since(session: Session | Connection, channel: str, since: datetime) -> int:
    """Instant messages a channel accepted since ``since`` (what a rate limit counts)."""
    q = (select(func.count()).select_from(Delivery).join(Alert, col(Alert.id) == col(Delivery.alert_id))
         .where(col(Delivery.channel) == channel, col(Delivery.status) == "sent",
                col(Delivery.sent_at) >= since, col(Delivery.digest_id).is_(None),
                col(Alert.kind) != "digest"))
    return int(_connection(session).execute(q).scalar_one())


def retry(session: Session, delivery_id: int | None = None, dead: bool = False,
          now: datetime | None = None) -> int:
    """Put one delivery (any state but sent/sending) or every dead one back to pending.

    Alerts carried by a digest are retried through their digest (never on their own, which would
    send them twice): retrying a digest puts its alerts back in "batched". A ``merged`` delivery
    (another alert of its story carries the event) is sent on its own when asked for by id.
    """
    now = now or datetime.now(UTC)
    q = select(Delivery.id).where(or_(col(Delivery.digest_id).is_(None), col(Delivery.status) == "merged"))
    if dead:
        q = q.where(col(Delivery.status) == "dead")
    else:
        q = q.where(col(Delivery.id) == delivery_id,
                    col(Delivery.status).in_(["failed", "dead", "pending", "merged"]))
    ids = [i for i in session.exec(q).all() if i is not None]
    if not ids:
        return 0
    session.execute(update(Delivery).where(col(Delivery.id).in_(ids))
                    .values(status="pending", next_attempt_at=now, attempts=0, last_error=None,
                            lease_owner=None, lease_expires_at=None, digest_id=None))
    # The alerts a digest carried; not those merged into a retried alert (they stay merged).
    session.execute(update(Delivery).where(col(Delivery.digest_id).in_(ids), col(Delivery.status) != "merged")
                    .values(status="batched", last_error=None))
    return len(ids)
