"""An entry whose transaction the database refuses for a reason that is not the entry's own (its
story merged away by another instance meanwhile) is placed again, never dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import sqlite3
import string
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from monitor.config import load_config
from monitor.daemon import Daemon, once_summary
from monitor.pipeline import CONFLICT_ATTEMPTS, Pipeline, PollReport
from monitor.store import Article, create_db_engine, upgrade
from monitor.store.db import refusal, refused_table, transient
from monitor.store.models import Story
from monitor.story.stories import Placed, StoryIndex, merge_stories
from tests.fetch_helpers import run_once
from tests.harness import source, write_config
from tests.newsroom import rss, seed_article
from tests.servers import Page, Request, Site, wait_for

WHEN = datetime(2025, 9, 24, 7, 15, tzinfo=UTC)


def _feed(site: Site, paths: list[str]) -> None:
    """A feed of ``paths``, each entry carrying the same body (copies of one story) in the feed,
    with an ETag: a poll sending it back gets a 304."""
    _, headline, paras = seed_article()
    body = "\n".join(paras[1:])
    feed = rss(site, [(p, f"{headline} ({p})", WHEN) for p in paths], {p: body for p in paths})
    etag = f'"{len(paths)}"'

    def serve(req: Request) -> Page:
        if req.headers.get("if-none-match") == etag:
            return Page(b"", status=304, headers={"ETag": etag})
        return Page(feed, "application/rss+xml", headers={"ETag": etag})

    site.pages["/feed.xml"] = serve


def _config(tmp_path: Path, database_url: str, site: Site) -> Path:
    return write_config(tmp_path / "config.toml", database_url,
                        source("Wire", site.url("/feed.xml"), full_text=False))


def _after_place(monkeypatch: pytest.MonkeyPatch, guid: str, times: int,
                 then: Callable[[Placed], None]) -> list[int]:
    """Call ``then`` after the story of the article ``guid`` is placed, the first ``times`` times
    (while its transaction is open, before its row is inserted). Returns the count of its placings."""
    real = StoryIndex.place
    placed_n: list[int] = []

    def place(self: StoryIndex, session: Session, article: Article, *args: Any, **kwargs: Any) -> Placed:
        placed = real(self, session, article, *args, **kwargs)
        if article.guid == guid:
            placed_n.append(1)
            if len(placed_n) <= times:
                then(placed)
        return placed

    monkeypatch.setattr(StoryIndex, "place", place)
    return placed_n


def _merge_away(engine: Engine) -> Callable[[Placed], None]:
    """Another instance (or an analyst) merges the placed story into another, in its own transaction."""
    def merge(placed: Placed) -> None:
        with Session(engine) as other:
            into = Story(title="another instance's story", created_at=datetime.now(UTC))
            other.add(into)
            other.flush()
            assert into.id is not None
            merge_stories(other, into.id, placed.story.story_id)
            other.commit()
    return merge


def _stories(engine: Engine) -> dict[str, int | None]:
    with Session(engine) as s:
        return {a.guid: a.story_id for a in s.exec(select(Article)).all()}


@contextlib.contextmanager
def _copy_whose_story_is_merged_away(tmp_path: Path, database_url: str, site: Site,
                                     times: int) -> Iterator[tuple[Path, Engine, list[int], PollReport]]:
    """/a stored; then a poll finds /b, a copy of /a joining its story, which another instance
    merges away right after each of /b's first ``times`` placings. Yields the config, an engine
    on the database, /b's placings and that poll's report."""
    cfg = _config(tmp_path, database_url, site)
    _feed(site, ["/a"])
    asyncio.run(run_once(cfg))
    engine = create_db_engine(database_url)
    try:
        _feed(site, ["/a", "/b"])
        with pytest.MonkeyPatch.context() as mp:
            placings = _after_place(mp, "/b", times, _merge_away(engine))
            [report] = asyncio.run(run_once(cfg, everything=True))
        yield cfg, engine, placings, report
    finally:
        engine.dispose()


def test_a_story_merged_away_while_an_article_joins_it_is_placed_again(
        tmp_path: Path, database_url: str, site: Site, caplog: pytest.LogCaptureFixture) -> None:
    with _copy_whose_story_is_merged_away(tmp_path, database_url, site, 1) as (_, engine, placings, report):
        stories = _stories(engine)
        assert sorted(stories) == ["/a", "/b"], report.warnings  # the copy is stored, not dropped
        assert len(placings) == 2  # placed again, once
        assert stories["/b"] == stories["/a"] is not None  # in the story its original was merged into
        assert report.new_articles == 1 and not report.warnings
        assert "already stored" not in caplog.text


def test_an_article_whose_story_keeps_changing_is_left_to_the_next_poll(
        tmp_path: Path, database_url: str, site: Site, caplog: pytest.LogCaptureFixture) -> None:
    # placed again: merged away again
    with _copy_whose_story_is_merged_away(tmp_path, database_url, site, 2) as (cfg, engine, placings, report):
        assert len(placings) == 2 and sorted(_stories(engine)) == ["/a"]
        assert "the next poll takes it again" in report.warnings[0] and report.deferred == 1
        with caplog.at_level(logging.INFO, logger="monitor.daemon"):
            once_summary([report])  # what `run --once` (cron) logs last
        assert "1 new entry left to the next poll" in caplog.text
        # The next poll reads the feed again (no 304 on the validators of the poll that left it).
        [report] = asyncio.run(run_once(cfg, everything=True))
        stories = _stories(engine)
        assert report.new_articles == 1 and stories["/b"] == stories["/a"] is not None


def test_the_daemon_counts_entries_left_to_the_next_poll_for_metrics(
        tmp_path: Path, database_url: str, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """/metrics' monitor_entries_deferred_total: the daemon's first poll finds /a and /b, a copy
    of /a joining its story, which another instance merges away after each of /b's placings."""
    from monitor.ops import metrics

    def deferred_total() -> float:
        found = re.search(r"^monitor_entries_deferred_total (\S+)$", metrics.render().decode(), re.M)
        assert found, "no monitor_entries_deferred_total on /metrics"
        return float(found.group(1))

    daemon = Daemon(load_config(_config(tmp_path, database_url, site)))
    daemon.metrics = metrics  # as where [http] listen serves /metrics
    _feed(site, ["/a", "/b"])
    placings = _after_place(monkeypatch, "/b", 2, _merge_away(daemon.engine))
    before = deferred_total()  # the counters are the process's: other tests may have counted

    async def first_poll() -> None:
        daemon.pipeline = Pipeline(daemon.config, daemon.engine)
        try:
            daemon.pipeline.sync_sources()
            await daemon._claim()
            await asyncio.gather(*daemon.polls.values())
        finally:
            await daemon.pipeline.aclose()

    try:
        upgrade(daemon.engine)
        asyncio.run(first_poll())
        assert len(placings) == 2 and sorted(_stories(daemon.engine)) == ["/a"]
    finally:
        daemon.engine.dispose()
    assert deferred_total() - before == 1


def _deadlock(url: str) -> Callable[[Placed], None]:
    """Another transaction (another instance, taking rows in another order) locks the outlet's
    row, then waits for a story claim the ingest holds; the ingest's insert then waits for the
    outlet's row (its foreign key): a deadlock. PostgreSQL ends it by aborting the ingest, which
    looks first (the other waits ten times longer before looking)."""
    import psycopg

    def lock(placed: Placed) -> None:
        other = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        other.execute("SET deadlock_timeout = '10s'")
        other.execute("SELECT id FROM source FOR UPDATE")

        def claim() -> None:
            try:
                other.execute("INSERT INTO dedup_claim (key) VALUES (%s) ON CONFLICT DO NOTHING", (placed.claims[0],))
            finally:
                other.rollback()
                other.close()

        threading.Thread(target=claim, daemon=True).start()
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as watch:
            assert wait_for(lambda: watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'").fetchone() == (1,), 30)  # the other waits for our claim
    return lock


@pytest.mark.parametrize("deadlocks", [1, CONFLICT_ATTEMPTS])
def test_an_ingest_aborted_by_a_deadlock_runs_again_or_is_left_to_the_next_poll(
        tmp_path: Path, pg_url: str, site: Site, deadlocks: int) -> None:
    cfg = _config(tmp_path, pg_url, site)
    _feed(site, ["/a"])
    engine = create_db_engine(pg_url)
    try:
        with pytest.MonkeyPatch.context() as mp:
            placings = _after_place(mp, "/a", deadlocks, _deadlock(pg_url))
            [report] = asyncio.run(run_once(cfg))
        if deadlocks < CONFLICT_ATTEMPTS:  # run again at once, and stored
            assert len(placings) == deadlocks + 1 and list(_stories(engine)) == ["/a"], report.warnings
            assert report.new_articles == 1 and not report.warnings
            return
        assert len(placings) == CONFLICT_ATTEMPTS and not _stories(engine)
        assert "deadlock detected" in report.warnings[0] and report.deferred == 1
        [report] = asyncio.run(run_once(cfg, everything=True))  # the next poll takes it
        assert report.new_articles == 1 and list(_stories(engine)) == ["/a"]
    finally:
        engine.dispose()


def test_an_entry_the_database_refuses_for_its_own_values_is_not_retried_forever(
        tmp_path: Path, pg_url: str, site: Site) -> None:
    """An entry whose own values the database refuses fails the same way at every poll: it is
    reported as not stored, and the feed's next poll is a normal one (a 304 on its validators),
    not a full re-read at min_interval that tries it again, forever. The refusal is PostgreSQL's
    own: a CHECK constraint this test adds against one entry's URL. (It was a URL longer than
    the unique index's rows allow, until over-long links were stored as a digest: see
    tests/test_hostile_sources.py.)"""
    cfg = _config(tmp_path, pg_url, site)
    refused_path = "/refused-" + "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=40))
    _feed(site, ["/a", refused_path])
    engine = create_engine(pg_url)
    upgrade(engine)
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE article ADD CONSTRAINT test_refused CHECK (position('/refused-' in url) = 0)")
    engine.dispose()
    [report] = asyncio.run(run_once(cfg))
    assert report.new_articles == 1 and report.deferred == 0
    assert any("not stored" in w and "next poll" not in w for w in report.warnings), report.warnings
    n = len(site.requests)
    [report] = asyncio.run(run_once(cfg, everything=True))
    feed_polls = [r for r in site.requests[n:] if r.path == "/feed.xml"]
    assert [r.headers.get("if-none-match") for r in feed_polls] == ['"2"']  # its validators kept: a 304
    assert report.new_articles == 0 and report.deferred == 0


def test_only_the_databases_own_state_is_worth_waiting_for(tmp_path: Path, pg_url: str) -> None:
    """``transient`` on real errors of both databases: locked and lost are, too big is not."""
    db = tmp_path / "locked.db"
    holder = sqlite3.connect(db)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    sqlite_engine = create_engine(f"sqlite:///{db}", connect_args={"timeout": 0.05})
    pg_engine = create_engine(pg_url)
    try:
        with pytest.raises(DBAPIError) as locked, sqlite_engine.begin() as c:
            c.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert transient(locked.value)
        read_only = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
        try:  # a file made read-only: mended by its operator, then the entry is still wanted
            with pytest.raises(DBAPIError) as refused, read_only.begin() as c:
                c.exec_driver_sql("DELETE FROM t")
            assert refused.value.orig.sqlite_errorname.startswith("SQLITE_READONLY")  # type: ignore[union-attr]
            assert transient(refused.value), refused.value
        finally:
            read_only.dispose()
        with pg_engine.begin() as c:
            c.exec_driver_sql("CREATE TABLE big (v text PRIMARY KEY)")
        with pytest.raises(DBAPIError) as big, pg_engine.begin() as c:
            c.exec_driver_sql("INSERT INTO big VALUES (%s)", ("".join(random.Random(7).choices(string.ascii_letters,
                                                                                              k=9000)),))
        assert not transient(big.value), big.value
        with pytest.raises(DBAPIError) as lost, pg_engine.connect() as c:
            c.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
            c.exec_driver_sql("SELECT 1")
        assert transient(lost.value), lost.value
    finally:
        holder.close()
        sqlite_engine.dispose()
        pg_engine.dispose()


def test_the_table_whose_key_refused_a_row_is_known_on_both_databases(tmp_path: Path, database_url: str) -> None:
    """Only the article's own keys mean "already stored": another table's key refusing a row
    (a story's alert claim moved by a merge meanwhile) is a crossing write, run again, not a
    reason to drop the article (``refused_table``)."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as c:
            for table in ("article", "story_alert"):
                c.exec_driver_sql(f"CREATE TABLE {table} (k text UNIQUE)")
                c.exec_driver_sql(f"INSERT INTO {table} VALUES ('x')")
        for table in ("article", "story_alert"):
            with pytest.raises(DBAPIError) as refused, engine.begin() as c:
                c.exec_driver_sql(f"INSERT INTO {table} VALUES ('x')")
            assert refusal(refused.value) == "unique" and refused_table(refused.value) == table
    finally:
        engine.dispose()
