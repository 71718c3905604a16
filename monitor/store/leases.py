"""Source claims: which daemon instance polls which source, so several can share one database.

A claim is a lease (owner, expiry) on the source row, taken with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so concurrent claimers never wait on or take each other's rows. Claiming also pushes
``next_poll_at`` one interval ahead: if the claimer dies mid-poll, the source becomes due again
one interval after the claim (never polled twice within an interval, never left unpolled).
A finished poll overwrites ``next_poll_at`` with the schedule the fetch stage computed.
SQLite has no row locks; it is single-instance (see ``InstanceLock``), so the same statements
are correct there.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import ColumnElement, Engine, and_, bindparam, or_, select, update

from monitor.store.db import DatabaseNotWritable, database_not_writable_message
from monitor.store.source_table import SOURCE

log = logging.getLogger(__name__)
# Statements here are on ``SOURCE`` (Core), not ``models.Source``: the claim loop runs before the
# ORM is imported (see ``monitor.store.source_table``).


@dataclass(frozen=True)
class Claim:
    source_id: int
    name: str
    taken_over_from: str | None = None  # the owner whose lease had expired


def timer_slack(interval: float) -> float:
    """How early a source may be polled by a timer that fires a little before next_poll_at."""
    return min(30.0, 0.25 * interval) if interval > 0 else 0.0


def due_condition(now: datetime, *, everything: bool = False,
                  timer_intervals: Mapping[str, float] | None = None) -> list[ColumnElement[bool]]:
    """The one rule for "due", as SQL for both the daemon's claim and ``run --once``.

    A source is due when it is not disabled (410 Gone) and was never polled or its next_poll_at
    has come. A source that is not failing (so has no backoff or Retry-After to honour) is also
    due when ``everything`` is asked (``run --once --all``), or, when polled by an outside timer
    (``timer_intervals``: name -> interval, for ``run --once`` from cron or a systemd timer),
    within ``timer_slack`` of next_poll_at, so a timer firing a few milliseconds early does not
    skip every other run. The daemon's claim loop runs every second and needs no slack.
    """
    t = SOURCE
    healthy = t.c.consecutive_failures == 0
    reached: list[ColumnElement[bool]] = [t.c.next_poll_at.is_(None), t.c.next_poll_at <= now]
    if everything:
        reached.append(healthy)
    elif timer_intervals:
        by_slack: dict[float, list[str]] = {}
        for name, interval in timer_intervals.items():
            if timer_slack(interval) > 0:
                by_slack.setdefault(timer_slack(interval), []).append(name)
        reached += [and_(healthy, t.c.name.in_(names), t.c.next_poll_at <= now + timedelta(seconds=slack))
                    for slack, names in by_slack.items()]
    return [or_(*reached), t.c.disabled_at.is_(None)]


def claim_due_sources(engine: Engine, owner: str, intervals: Mapping[str, float], *, limit: int,
                      lease: float, now: datetime | None = None) -> list[Claim]:
    """Lease up to ``limit`` due, unleased (or expired) sources named in ``intervals`` to ``owner``."""
    if limit <= 0 or not intervals:
        return []
    now = now or datetime.now(UTC)
    t = SOURCE
    query = (select(t.c.id, t.c.name, t.c.lease_owner)
             .where(*due_condition(now))
             .where(or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at <= now))
             .where(t.c.name.in_(list(intervals)))
             .order_by(t.c.next_poll_at.asc().nulls_first(), t.c.id)
             .limit(limit)
             .with_for_update(skip_locked=True))
    with engine.begin() as conn:
        rows = conn.execute(query).all()
        if not rows:
            return []
        conn.execute(
            update(t).where(t.c.id == bindparam("sid")).values(
                lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease),
                next_poll_at=bindparam("next_at")),
            [{"sid": r.id, "next_at": now + timedelta(seconds=intervals[r.name])} for r in rows])
    return [Claim(r.id, r.name, r.lease_owner if r.lease_owner and r.lease_owner != owner else None)
            for r in rows]


def spread_first_polls(engine: Engine, intervals: Mapping[str, float], *, per_second: float = 10.0,
                       now: datetime | None = None) -> tuple[int, float]:
    """Give never-polled sources staggered first polls instead of all at once.

    Sources keep the phase of their first poll (the next one is an interval after it), so
    hundreds of new sources polled together would stay a burst every interval for good: CPU
    spikes, an outbox backlog, late alerts. Spreading them at ``per_second`` (within their
    interval) keeps the load even. Only rows still NULL are touched, so instances starting
    together agree. Returns (sources, seconds spread over).
    """
    now = now or datetime.now(UTC)
    t = SOURCE
    with engine.begin() as conn:
        rows = conn.execute(select(t.c.id, t.c.name).where(t.c.next_poll_at.is_(None), t.c.name.in_(list(intervals)))
                            .order_by(t.c.id)).all()
        if len(rows) < 2:
            return 0, 0.0
        window = min(min(intervals[r.name] for r in rows), len(rows) / per_second)
        conn.execute(update(t).where(t.c.id == bindparam("sid"), t.c.next_poll_at.is_(None))
                     .values(next_poll_at=bindparam("at")),
                     [{"sid": r.id, "at": now + timedelta(seconds=window * k / len(rows))}
                      for k, r in enumerate(rows)])
    return len(rows), window


def renew_leases(engine: Engine, owner: str, source_ids: Collection[int], lease: float) -> int:
    """Extend this owner's leases on sources still being polled (long polls keep their claim)."""
    if not source_ids:
        return 0
    t = SOURCE
    with engine.begin() as conn:
        res = conn.execute(update(t).where(t.c.lease_owner == owner, t.c.id.in_(list(source_ids)))
                           .values(lease_expires_at=datetime.now(UTC) + timedelta(seconds=lease)))
    return int(res.rowcount or 0)


def release_leases(engine: Engine, owner: str, source_ids: Collection[int] | None = None) -> int:
    """Give claims back (after a poll, or all of them on shutdown)."""
    t = SOURCE
    stmt = update(t).where(t.c.lease_owner == owner)
    if source_ids is not None:
        if not source_ids:
            return 0
        stmt = stmt.where(t.c.id.in_(list(source_ids)))
    with engine.begin() as conn:
        res = conn.execute(stmt.values(lease_owner=None, lease_expires_at=None))
    return int(res.rowcount or 0)


class AlreadyRunning(Exception):
    """Another instance holds the SQLite database."""


class InstanceLock:
    """One daemon per SQLite file: an exclusive ``flock`` on ``<database>.lock``.

    The kernel drops the lock when the process dies, however it dies, so a crash never leaves a
    stale lock behind. The file records the holder's pid for the message.
    """

    def __init__(self, database_url: str):
        prefix = "sqlite:///"
        self.path: Path | None = None
        if database_url.startswith(prefix) and database_url != "sqlite:///:memory:":
            self.path = Path(database_url[len(prefix):].split("?", 1)[0] + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        try:
            f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115  (held for the process's life)
        except OSError as exc:
            db = str(self.path)[: -len(".lock")]
            raise DatabaseNotWritable(database_not_writable_message(
                f"sqlite:///{db}", f"{exc.strerror or exc}: {self.path}")) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            db = str(self.path)[: -len(".lock")]
            raise AlreadyRunning(
                f"another monitor instance (pid {holder}) is already running on the SQLite database "
                f"{db}; SQLite mode runs one instance only: stop the other one, or use PostgreSQL "
                f"([monitor] database = \"postgresql+psycopg://...\") to run several") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
