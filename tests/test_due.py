"""One rule for "due": what the daemon claims and what ``run --once`` polls come from the same
SQL condition, so a source is never polled by one and skipped by the other for another reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import select

from monitor.store import Source, create_db_engine, session_scope, upgrade
from monitor.store.leases import claim_due_sources, due_condition


def _engine(url: str) -> Engine:
    engine = create_db_engine(url)
    upgrade(engine)
    return engine


def _due(engine: Engine, now: datetime, everything: bool = False,
         timer_intervals: dict[str, float] | None = None) -> set[str]:
    with session_scope(engine) as s:
        return set(s.exec(select(Source.name).where(
            *due_condition(now, everything=everything, timer_intervals=timer_intervals))).all())


def test_due_is_the_same_for_the_claim_and_run_once(database_url: str) -> None:
    engine = _engine(database_url)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        s.add_all([
            Source(name="never", url="http://127.0.0.1/a"),
            Source(name="due", url="http://127.0.0.1/b", next_poll_at=now - timedelta(seconds=1)),
            Source(name="early", url="http://127.0.0.1/c", next_poll_at=now + timedelta(seconds=2)),
            Source(name="later", url="http://127.0.0.1/d", next_poll_at=now + timedelta(minutes=10)),
            Source(name="backoff", url="http://127.0.0.1/e", next_poll_at=now + timedelta(seconds=2),
                   consecutive_failures=3),
            Source(name="gone", url="http://127.0.0.1/f", disabled_at=now - timedelta(days=1)),
        ])
    intervals = {n: 60.0 for n in ("never", "due", "early", "later", "backoff", "gone")}

    assert _due(engine, now) == {"never", "due"}
    # A timer firing two seconds before next_poll_at still polls a healthy source (slack 15 s
    # for a 60 s interval), never one in backoff, which asked for its time.
    assert _due(engine, now, timer_intervals=intervals) == {"never", "due", "early"}
    # ``--all`` ignores the interval, never a backoff, never a source that is gone.
    assert _due(engine, now, everything=True) == {"never", "due", "early", "later"}
    assert {c.name for c in claim_due_sources(engine, "me", intervals, limit=10, lease=30, now=now)} == \
        {"never", "due"}
