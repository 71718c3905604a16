"""Source claims: due sources are leased to one instance at a time; a dead instance's lease expires."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from monitor.store import Source, create_db_engine, session_scope, upgrade
from monitor.store.leases import claim_due_sources, release_leases, renew_leases, spread_first_polls
from tests.harness import run_monitor, start_daemon
from tests.newsroom import newsroom_config, publish_newsroom
from tests.servers import Mailbox, Site


def _engine(url: str) -> Engine:
    engine = create_db_engine(url)
    upgrade(engine)
    return engine


def _add(engine: Engine, **next_at: datetime | None) -> dict[str, int]:
    with session_scope(engine) as s:
        rows = [Source(name=n, url=f"http://127.0.0.1/{n}", next_poll_at=t) for n, t in next_at.items()]
        s.add_all(rows)
        s.flush()
        return {r.name: r.id for r in rows if r.id is not None}


def _row(engine: Engine, name: str) -> Source:
    with session_scope(engine) as s:
        return s.exec(select(Source).where(Source.name == name)).one()


def _aware(dt: datetime | None) -> datetime:
    assert dt is not None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def test_claims_due_sources_once_and_takes_over_expired_leases(database_url: str) -> None:
    engine = _engine(database_url)
    now = datetime.now(UTC)
    _add(engine, never=None, due=now - timedelta(seconds=5), later=now + timedelta(minutes=5))
    intervals = {"never": 20.0, "due": 20.0, "later": 20.0}

    claims = claim_due_sources(engine, "a", intervals, limit=10, lease=30, now=now)
    assert sorted(c.name for c in claims) == ["due", "never"]
    # The claim pushes the schedule one interval on: a claimer that dies mid-poll leaves the
    # source due again one interval later, neither sooner nor never.
    assert _aware(_row(engine, "due").next_poll_at) == now + timedelta(seconds=20)
    assert _row(engine, "due").lease_owner == "a"

    # Another instance finds nothing: leased, or not due.
    assert claim_due_sources(engine, "b", intervals, limit=10, lease=30, now=now + timedelta(seconds=21)) == []

    # Renewed leases hold; once a lease has expired (its owner died), the source is taken over.
    assert renew_leases(engine, "a", [c.source_id for c in claims], lease=60) == 2
    assert claim_due_sources(engine, "b", intervals, limit=10, lease=30, now=now + timedelta(seconds=45)) == []
    taken = claim_due_sources(engine, "b", intervals, limit=10, lease=30, now=now + timedelta(seconds=90))
    assert sorted((c.name, c.taken_over_from) for c in taken) == [("due", "a"), ("never", "a")]

    # Released leases free the source for whoever finds it due next; only the owner's are released.
    assert release_leases(engine, "a") == 0
    assert release_leases(engine, "b", [taken[0].source_id]) == 1
    assert release_leases(engine, "b") == 1
    assert _row(engine, "due").lease_owner is None
    engine.dispose()


def test_claims_respect_limit_config_and_disabled_sources(database_url: str) -> None:
    engine = _engine(database_url)
    now = datetime.now(UTC)
    _add(engine, **{f"s{i}": now - timedelta(seconds=100 - i) for i in range(5)}, removed=None)
    intervals = {f"s{i}": 60.0 for i in range(5)}  # "removed" is no longer in the config
    first = claim_due_sources(engine, "a", intervals, limit=2, lease=30, now=now)
    assert [c.name for c in first] == ["s0", "s1"]  # the most overdue first
    rest = claim_due_sources(engine, "a", intervals, limit=10, lease=30, now=now)
    assert [c.name for c in rest] == ["s2", "s3", "s4"]
    if hasattr(Source, "disabled_at"):
        with session_scope(engine) as s:
            row = s.exec(select(Source).where(Source.name == "s0")).one()
            row.disabled_at = now  # type: ignore[attr-defined,unused-ignore]
            s.add(row)
        assert [c.name for c in claim_due_sources(engine, "b", intervals, limit=10, lease=30,
                                                  now=now + timedelta(hours=1))] == ["s1", "s2", "s3", "s4"]
    engine.dispose()


def test_first_polls_of_new_sources_are_spread_not_a_burst(database_url: str) -> None:
    engine = _engine(database_url)
    now = datetime.now(UTC)
    polled = now + timedelta(seconds=30)  # polled before: due in 30 s
    _add(engine, **{f"n{i:02d}": None for i in range(30)}, old=polled)
    intervals = {f"n{i:02d}": 60.0 for i in range(30)} | {"old": 60.0}
    assert spread_first_polls(engine, intervals, per_second=10, now=now) == (30, 3.0)
    with session_scope(engine) as s:
        rows = {r.name: _aware(r.next_poll_at) for r in s.exec(select(Source)).all()}
    assert rows.pop("old") == polled  # a polled source keeps its schedule
    offsets = sorted((t - now).total_seconds() for t in rows.values())
    assert offsets[0] == 0 and offsets[-1] < 3.0 and len(set(offsets)) == 30
    # Claiming now finds only the first few; the rest become due over the next 3 s.
    assert len(claim_due_sources(engine, "a", intervals, limit=50, lease=30, now=now)) == 1
    assert len(claim_due_sources(engine, "a", intervals, limit=50, lease=30, now=now + timedelta(seconds=1))) == 10
    assert spread_first_polls(engine, intervals, now=now) == (0, 0.0)
    # A short interval bounds the spread: every source is polled within its interval.
    _add(engine, **{f"q{i}": None for i in range(40)})
    assert spread_first_polls(engine, {f"q{i}": 2.0 for i in range(40)}, now=now) == (40, 2.0)
    engine.dispose()


def test_concurrent_claimers_on_postgresql_split_the_sources(pg_url: str) -> None:
    url = pg_url
    engine = _engine(url)
    _add(engine, **{f"s{i:02d}": None for i in range(40)})
    intervals = {f"s{i:02d}": 60.0 for i in range(40)}
    engines = [create_db_engine(url) for _ in range(4)]
    barrier = threading.Barrier(4)
    got: dict[int, list[str]] = {}

    def claimer(k: int) -> None:
        barrier.wait()
        names: list[str] = []
        for _ in range(5):
            names += [c.name for c in claim_due_sources(engines[k], f"i{k}", intervals, limit=3, lease=30)]
        got[k] = names

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [n for names in got.values() for n in names]
    assert len(claimed) == len(set(claimed)) == 40  # each source to exactly one instance
    for e in [engine, *engines]:
        e.dispose()


def test_second_instance_on_one_sqlite_file_refuses_to_start(tmp_path: Path, site: Site, webhook: Site,
                                                             mailbox: Mailbox) -> None:
    publish_newsroom(site)
    cfg = newsroom_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'monitor.db'}", site,
                       mailbox.port, webhook.url("/hook"))
    with start_daemon(cfg) as proc:
        proc.wait_running(30)
        second = run_monitor(cfg, "run", timeout=30)
        assert second.returncode == 1
        assert f"already running on the SQLite database {tmp_path / 'monitor.db'}" in second.stderr
        assert f"pid {proc.pid}" in second.stderr and "use PostgreSQL" in second.stderr
        assert run_monitor(cfg, "run", "--once", timeout=30).returncode == 1
        assert proc.stop() == 0
    # The lock goes with the process: a new instance starts (and is told nothing is due).
    assert run_monitor(cfg, "run", "--once").returncode == 0


@pytest.fixture(autouse=True)
def _no_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
