"""Wires the stages together: source -> fetch -> parse -> extract -> ingest (store -> story -> match
-> gate -> outbox, see ``monitor.ingest``) -> delivery.

Each stage is a small typed function or class in its own subpackage; this module only moves
data between them and owns the transactions.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Engine, and_, bindparam, insert, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError, OperationalError

from monitor import collector
from monitor.config import Config, SourceConfig
from monitor.deliver.base import delivery_parts
from monitor.embed.check import EmbedderUnavailable
from monitor.fetch import Fetcher, FetchError
from monitor.fetch.holds import holds_for
from monitor.fetch.state import (
    PollOutcome,
    PollState,
    SourceRow,
    apply_outcome,
    plain_success,
    plain_success_update,
    sync_source_row,
)
from monitor.match import rule_set, uses_about
from monitor.parse.entry import FeedEntry, FeedParseError, storable_guid
from monitor.sources.poll import HTML_ACCEPT, fetch_source, robots_enabled
from monitor.store.batch import Bound, GroupCommit
from monitor.store.db import first_line, refusal, refused_table, session_scope, transient
from monitor.store.leases import due_condition
from monitor.store.source_table import ARTICLE_KEYS, SOURCE, poll_url
from monitor.util import aware, plural, too_old

if TYPE_CHECKING:
    from sqlmodel import Session

    from monitor.deliver import Channel
    from monitor.deliver.worker import Deliverer, DeliveryReport
    from monitor.ingest import Ingest, Reread
    from monitor.pagework import Page
    from monitor.store.models import Article, Source

# What only a new article needs (parsing's URL rules, extraction's results, stories, the rule
# engine, the alert gate; NumPy, lxml, regex tables) is imported by ``Pipeline.prepare``, on the
# ingest thread, once a poll finds new entries: the first poll is sent without waiting for it,
# and a daemon whose sources bring nothing new never holds it (README "Start-up time").
# Nor does the first poll wait for the ORM (SQLModel, pydantic, the tables' classes): syncing the
# sources, reading a poll's start and writing its plain outcome are Core statements on
# ``monitor.store.source_table.SOURCE``; ``models`` is imported where an article or a notice is.

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _plain_update() -> Any:
    return plain_success_update(SOURCE)


# Ingestion (story, match, outbox writes) runs on its own single thread: one article at a time, in
# order, and never on the event loop.
_INGEST_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")
# The lookups of which entries are new (``_lookup``) run on two threads of their own, not the
# loop's default executor (up to 32 threads): polls that end together (max_polls of them) hold
# at most two pooled connections for them, and the default executor's threads and the rest of
# the pool (5 + 10) stay free for lease renewals and claims.
_LOOKUP_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="entry-lookup")
ENTRY_BATCH = 500  # entries looked up (2 parameters each) and fetched at a time
PAGES_QUEUED = 4  # per extraction worker: pages downloaded and waiting for one, at most (``_page_slots``)
LINK_SOURCES = ("html", "sitemap")  # entries are links to fetch: at most max_links_per_poll new ones a poll


# Updated articles (README "Updated articles"): a stored article whose feed entry changed is
# fetched and matched again at most this many times, this far apart, and at most this many
# per poll (the rest wait for the next poll, their digests unchanged in the database).
MAX_REREADS = 5
REREAD_GAP = 600.0  # seconds
REREADS_PER_POLL = 10
REWRITTEN = 5  # every stored entry of a poll changed, and at least this many: the feed rewrites them
MAX_WARNINGS = 20  # a poll's warnings kept for `monitor sources` and the console, at most
# A source whose latest WALL_RUN articles were all stored with the feed's text because their
# pages were walls (a consent or bot wall: ``pagework.NOT_THE_ARTICLE``) gets one page fetched a
# poll, as a probe, instead of every new one; the others are stored with the feed's text and
# this reason. A probe that is the article ends it (README "Consent walls and bot walls").
WALL_RUN = 8
WALLED = ("not fetched: the source's latest pages were not the articles (a consent or bot wall?); "
          "one page a poll is fetched to see whether they are again")
CONFLICT_ATTEMPTS = 3  # runs of an ingest transaction that PostgreSQL aborts to end a deadlock, at most


class EntryDeferred(Exception):
    """The database refused a new entry's transaction for a reason not the entry's own (a
    deadlock every time, a locked or full database, a lost connection): it is not stored now,
    and the poll leaves it to the next one instead of dropping it."""


@dataclass
class PollReport:
    source: str
    status: str = "ok"  # ok | not_modified | error
    entries: int = 0
    new_articles: int = 0
    alerts: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    lease_released: bool = False  # the poll's record also gave the source's lease back
    deferred: int = 0  # new entries the database refused for now (``EntryDeferred``): the next poll takes them
    updated_articles: int = 0  # stored articles read again whose text changed (their entries did)


@dataclass(frozen=True)
class PollStart:
    """What a poll starts from: the source row's address, validators and lease, and whether it
    is due."""

    id: int
    url: str
    etag: str | None
    last_modified: str | None
    lease_owner: str | None
    disabled_at: datetime | None
    due: bool


@dataclass(frozen=True)
class Lookup:
    """Which of a poll's entries are new, and which stored articles' entries changed."""

    new: list[FeedEntry]
    changed: list[tuple[FeedEntry, int]]  # (the entry now, its stored article's id)
    rewritten: int = 0  # every stored entry changed at once: this many, not read again (``REWRITTEN``)


def link_key(guid: str, url: str) -> str:
    """The key an entry is stored under when its feed gives its GUID to entries of other links
    too (``keyed_by_link``): the GUID and the link, a space between (a digest of them when too
    long, as for any GUID)."""
    return storable_guid(f"{guid} {url}")


def keyed_by_link(entries: list[FeedEntry]) -> tuple[list[FeedEntry], int]:
    """The poll's entries, those whose GUID the feed gives to entries of other links keyed by
    their GUID and link (``link_key``) instead; and how many were.

    A GUID is meant to name one entry, and the article table's key is (source, GUID). A CMS that
    writes one GUID on every item (the site's home page, say) made every item after the first
    "already stored" and lost for good. Entries with distinct links are distinct articles; an
    exact repeat (same GUID, same link) stays one entry. All of the poll's entries are looked at
    at once: two items of one GUID may fall in different ``ENTRY_BATCH`` batches."""
    first: dict[str, str] = {}
    shared: set[str] = set()
    for e in entries:
        if first.setdefault(e.guid, e.url) != e.url:
            shared.add(e.guid)
    if not shared:
        return entries, 0
    keyed = [replace(e, guid=link_key(e.guid, e.url)) if e.guid in shared else e for e in entries]
    return keyed, sum(1 for e in entries if e.guid in shared)


def rereadable(row: Any, max_age: float, now: datetime) -> bool:
    """Whether a stored article (``ARTICLE_KEYS``' columns) may be read again now that its
    entry changed: it was stored with a digest (articles stored before migration 1701 were
    not), is still young enough to alert (``alert_max_age``, by publication date, else first
    seen), has been read again fewer than ``MAX_REREADS`` times and not in the last
    ``REREAD_GAP``. A feed that rewrites an entry at every poll (a view counter in its
    summary) costs at most ``MAX_REREADS`` page fetches per article, spread out."""
    if row.entry_digest is None or row.reread_count >= MAX_REREADS:
        return False
    if row.reread_at is not None and (now - aware(row.reread_at)).total_seconds() < REREAD_GAP:
        return False
    return not too_old(row, max_age, now)


@dataclass(frozen=True)
class PollRecord:
    """One poll's outcome, waiting for its batch's transaction (``Pipeline._write_polls``)."""

    source_id: int
    sc: SourceConfig
    started: datetime
    outcome: PollOutcome
    release_lease: str | None = None  # the claiming instance: its lease ends with this record
    warnings: tuple[str, ...] | None = None  # the source was read: what it noticed (None: not read)


class Pipeline:
    def __init__(self, config: Config, engine: Engine, alert_hold: float = 0.0):
        """``alert_hold``: how long an alert waits before it is due. The daemon gives the
        config's (``[monitor] alert_hold``); ``run --once`` needs none: it delivers after its
        last poll, when the stories of its polls have settled."""
        self.config = config
        self.engine = engine
        self.alert_hold = alert_hold
        self._stages: Ingest | None = None  # built by prepare()
        self._prepare_lock = threading.Lock()
        self._preparing = False
        self._outlets: dict[int, Source] = {}  # source id -> a detached row holding its name (``_outlet``)
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None  # ``_page_slots``
        # The channels and alert policies now (one that cannot be built stops the start); the
        # delivery worker with the first delivery (``deliverer``): its modules (the outbox, the
        # payloads' pydantic models, the renderer) are ~7 ms of CPU the first poll does not
        # wait for (issue 15).
        self._delivery_parts = delivery_parts(config)
        self.channels: dict[str, Channel] = self._delivery_parts[0]
        self._deliverer: Deliverer | None = None
        # The hosts that asked to wait (429/503 Retry-After) are held for the database's every
        # pipeline in this process: a config reload's new pipeline does not ask them again.
        self.fetcher = Fetcher(config.fetch, config.monitor.contact, holds=holds_for(config.database_url))
        # Poll outcomes are committed in batches (group commit): a 304 costs a few column
        # writes, and a transaction each cost more than the request did (issue 15). On
        # PostgreSQL without waiting for the WAL flush (~3 ms a commit on a plain disk): a crash
        # of the server can lose the last of them, and the sources then poll again as if those
        # polls had not happened (the old validators, schedule and failure count; a notice and
        # the state that sent it are lost together, so it goes out when the state recurs). The
        # record also ends the daemon's lease on the source: with it lost, no instance claims
        # the source again until the lease expires ([monitor] lease, 60 s by default, after the
        # claim or its last renewal), even if it is due sooner. What a poll stored is not lost:
        # its articles, alerts and their deliveries commit in the ingest's own transactions,
        # which wait for the flush, before the record is written.
        self.records: GroupCommit[PollRecord, None] = GroupCommit(engine, self._write_polls, name="poll-records",
                                                                  flush=False)
        # Likewise the read that starts a poll: polls started together (a claim, run --once)
        # share one query.
        self.starts: GroupCommit[tuple[SourceConfig, bool, datetime], PollStart | None] = GroupCommit(
            engine, self._read_starts, name="poll-starts", orm=False)
        # The one switch for the sentence-embedding model: only a config that needs it (an
        # about() rule; cross-language stories) loads it and stores each article's vector.
        about = uses_about(config)
        self.needs_embeddings = about or config.dedup.events
        if self.needs_embeddings:
            # Check the package now: a missing or damaged model stops the start, not an ingest.
            # The model itself is loaded by the ingest stages (``prepare``) before the first new
            # article, or sooner on a thread (``monitor run`` with about() rules starts it), never
            # on the way to the first poll: its 2-3 s delayed every poll of a config with about()
            # rules (issue 15). Event stories alone load it with the first new article, so a
            # daemon that only polls stays small (issue 12).
            from monitor.embed import model_problem

            problem = model_problem()
            if problem:
                needs = "about() rules need" if about else "[dedup] events = true needs"
                raise EmbedderUnavailable(f"{needs} the sentence model: {problem}")

    @property
    def deliverer(self) -> Deliverer:
        """The delivery worker of this config's channels, made on first use (on the event loop)."""
        if self._deliverer is None:
            from monitor.deliver.worker import Deliverer

            self._deliverer = Deliverer.from_config(self.config, self.engine, parts=self._delivery_parts)
        return self._deliverer

    # -- the ingest stages, on first need ----------------------------------------------------
    @property
    def ingest(self) -> Ingest:
        """The ingest steps with the compiled rules and the story index (``prepare``)."""
        return self._stages or self.prepare()

    def prepare(self) -> Ingest:
        """Import the ingest stages and compile the rules (once; thread-safe). Runs on the ingest
        thread when a poll first finds new entries (``prepare_soon``), beside the page fetches;
        a reload calls it before swapping, so a rule that does not compile keeps the old config."""
        with self._prepare_lock:
            if self._stages is None:
                from monitor.ingest import Ingest
                from monitor.story.stories import StoryIndex

                cfg = self.config
                stories = StoryIndex(window=cfg.dedup.window, min_containment=cfg.dedup.min_containment,
                                     event_window=cfg.dedup.event_window, events=cfg.dedup.events)
                self._stages = Ingest(rule_set(cfg), stories, realert={r.name: r.realert for r in cfg.rules},
                                      channels={r.name: r.channels for r in cfg.rules},
                                      alert_max_age=cfg.monitor.alert_max_age, hold=self.alert_hold)
                # The modules just imported and the compiled rules live as long as the process:
                # out of the collector's reach (~0.1 M objects, tens of ms each full pass).
                collector.freeze()
            return self._stages

    def prepare_soon(self) -> None:
        """``prepare`` on the ingest thread, queued before any article, unless done or queued."""
        if self._stages is None and not self._preparing:
            self._preparing = True
            _INGEST_POOL.submit(self.prepare)

    async def aclose(self) -> None:
        await self.records.aclose()  # every poll's outcome is committed before the end
        await self.starts.aclose()
        await self.fetcher.aclose()
        if self._deliverer is not None:  # none made: no connection to close
            await self._deliverer.aclose()

    # -- sources ---------------------------------------------------------------------------
    def sync_sources(self) -> None:
        """Make the source table reflect the config; polling state of kept sources survives.

        Core statements (the daemon's start runs this before its first poll, without the ORM):
        a new source is inserted as the ORM inserted a new ``Source``, and only the columns
        ``sync_source_row`` changed are written, as the ORM wrote a changed row."""
        t = SOURCE
        names = SourceRow.columns()
        with self.engine.begin() as conn:
            existing = {row[0]: SourceRow(*row[1:]) for row in conn.execute(
                core_select(t.c.name, *(t.c[name] for name in names)))}
            new: list[dict[str, Any]] = []
            for sc in self.config.sources:
                row = existing.get(sc.name)
                if row is None:
                    new.append({"name": sc.name, "url": sc.url, "config_url": sc.url, "kind": sc.type,
                                "consecutive_failures": 0})
                    continue
                before = row.values()
                if sync_source_row(row, sc):
                    conn.execute(update(t).where(t.c.id == row.id).values(row.changes(before)))
            if new:
                conn.execute(insert(t), new)

    def due_sources(self, now: datetime | None = None, everything: bool = False) -> tuple[list[SourceConfig], bool]:
        """Sources due now (``due_condition``, as an outside timer sees it); ``everything``
        ignores the interval but not backoff or Retry-After. And whether one of them that fetches
        full text was never polled (every page of its first poll is new), read by the same query
        (``run --once`` asked the database a second time)."""
        intervals = {sc.name: sc.interval for sc in self.config.sources}
        t = SOURCE
        with self.engine.connect() as conn:
            due: dict[str, bool] = dict(conn.execute(core_select(t.c.name, t.c.last_polled_at.is_(None)).where(
                *due_condition(now or datetime.now(UTC), everything=everything, timer_intervals=intervals))).all())
        chosen = [sc for sc in self.config.sources if sc.name in due]
        if everything and len(chosen) < len(self.config.sources):
            self._say_held_back({sc.name for sc in self.config.sources} - set(due))
        return chosen, any(due[sc.name] for sc in chosen if sc.full_text)

    def _say_held_back(self, names: set[str]) -> None:
        """``run --once --all`` polls every source whatever its interval, never one a server
        asked to wait or that is backing off after failures (``due_condition``): each one left
        out is named, with why and until when, instead of the run's count alone being short (a
        user saw 4 of 7 polled and nothing said)."""
        t = SOURCE
        with self.engine.connect() as conn:
            rows = conn.execute(core_select(t.c.name, t.c.consecutive_failures, t.c.next_poll_at, t.c.disabled_at,
                                            t.c.disabled_reason).where(t.c.name.in_(sorted(names)))).all()
        for name, failures, next_at, disabled_at, reason in rows:
            if disabled_at is not None:
                why = f"disabled ({reason or 'gone'}) until its url in the config changes"
            else:
                until = f" until {aware(next_at):%Y-%m-%d %H:%M:%S} UTC" if next_at is not None else ""
                why = f"backing off after {plural(failures or 0, 'failure')} in a row{until}"
            log.warning("source %s not polled by --all: %s (`monitor sources` shows its last error)", name, why)

    # -- one poll --------------------------------------------------------------------------
    async def poll(self, sc: SourceConfig, force: bool = False, release_lease: str | None = None) -> PollReport:
        """Poll one source now, unless it is disabled or not yet due.

        ``force`` ignores the regular interval, never a backoff or a Retry-After: a failing
        server asked for time, and neither a restart nor ``run --once --all`` takes it back.
        ``release_lease``: the daemon instance that claimed the source; the transaction that
        records the poll also ends its lease (``report.lease_released``).
        """
        report = PollReport(source=sc.name)
        started = datetime.now(UTC)
        start = await self.starts.submit((sc, force, started))
        if start is None:
            raise LookupError(f"source {sc.name!r} is not in the database (sync_sources first)")
        # The row's URL has its secrets masked: the real one is the config's (``poll_url``).
        source_id, url, etag, last_modified = start.id, poll_url(start.url, sc.url), start.etag, start.last_modified
        # A leased source was claimed as due by the daemon's claim loop, which already moved
        # next_poll_at ahead as its crash guard: the claim is the due decision.
        claimed = start.lease_owner is not None and start.disabled_at is None
        if not claimed and not start.due:
            report.status = "disabled" if start.disabled_at is not None else "not_due"
            return report
        try:
            return await self._poll(report, source_id, sc, url, etag, last_modified, started, release_lease)
        except Exception as exc:
            # Whatever else fails inside one source's poll (a library bug on hostile input, a
            # database refusal) is this source's error, with its backoff and notices: it never
            # aborts ``run --once`` for the others, nor loops in the daemon.
            log.exception("source %s (%s): poll failed unexpectedly", source_id, sc.name)
            report.status, report.error = "error", f"unexpected {type(exc).__name__}: {exc}"
            await self._record_poll(report, source_id, sc, started, PollOutcome(status=None, error=report.error),
                                    release_lease)
            return report

    async def _poll(self, report: PollReport, source_id: int, sc: SourceConfig, url: str, etag: str | None,
                    last_modified: str | None, started: datetime, release_lease: str | None) -> PollReport:
        robots = robots_enabled(sc, self.config.fetch.robots)
        try:
            result = await fetch_source(self.fetcher, sc, url, etag, last_modified, robots)
        except (FetchError, FeedParseError) as exc:
            report.status, report.error = "error", str(exc)
            log.warning("source %s (%s): poll failed: %s", source_id, sc.name, exc)
            headers = exc.headers if isinstance(exc, FetchError) else {}
            await self._record_poll(report, source_id, sc, started, PollOutcome(
                status=getattr(exc, "status", None), error=str(exc), headers=headers), release_lease)
            return report
        outcome = PollOutcome(status=result.status, etag=result.etag, last_modified=result.last_modified,
                              headers=result.headers, ttl_minutes=result.ttl_minutes,
                              new_url=result.new_url, new_url_reason=result.new_url_reason)
        if result.not_modified:
            report.status = "not_modified"
            await self._record_poll(report, source_id, sc, started, outcome, release_lease)
            return report
        report.entries = len(result.entries)
        report.warnings = list(result.warnings)
        entries, shared = keyed_by_link(result.entries)
        if shared:
            report.warnings.append(f"{plural(shared, 'entry')} of the feed share a GUID with entries of other "
                                   f"links: each is stored as its own article, keyed by its GUID and link")
        for w in report.warnings:
            log.info("source %s (%s): %s", source_id, sc.name, w)

        loop = asyncio.get_running_loop()
        # A listing page or sitemap names pages to fetch, maybe thousands: at most
        # ``max_links_per_poll`` new ones per poll, in the order the source lists them (newest
        # first, as pages and sitemaps list them). The others stay unseen (nothing about them is
        # stored), so the next poll, due within ``min_interval`` and sent without validators so
        # that no 304 hides the page, takes the next ones.
        budget = self.config.fetch.max_links_per_poll if sc.type in LINK_SOURCES else None
        rereads = REREADS_PER_POLL  # stored articles whose entries changed, read again this poll at most
        # Bounded batches: a feed with 130,000 entries neither exceeds the database's parameter
        # limit (SQLite 32,766; PostgreSQL 65,535) nor starts 130,000 page fetches at once.
        for start in range(0, len(entries), ENTRY_BATCH):
            # Off the event loop (a query, and on SQLite maybe a wait for a writer's lock): other
            # sources' fetches, deliveries and lease renewals keep their timing meanwhile.
            found = await loop.run_in_executor(_LOOKUP_POOL, contextvars.copy_context().run, self._lookup,
                                               source_id, entries[start:start + ENTRY_BATCH])
            new_entries, changed = found.new, found.changed[:rereads]
            rereads -= len(changed)
            if found.rewritten:
                report.warnings.append(f"all {found.rewritten} stored entries changed at once (a feed that rewrites "
                                       f"its entries, or their dates, at every request?): their articles were not "
                                       f"read again")
                log.info("source %s (%s): %s", source_id, sc.name, report.warnings[-1])
            if new_entries or changed:
                self.prepare_soon()
            if budget is not None:
                if len(new_entries) >= budget and (len(new_entries) > budget
                                                   or start + ENTRY_BATCH < len(entries)):
                    outcome.more = True
                    report.warnings.append(f"more than {self.config.fetch.max_links_per_poll} new links: "
                                           f"the rest are fetched by the next polls ([fetch] max_links_per_poll)")
                    log.info("source %s (%s): %s", source_id, sc.name, report.warnings[-1])
                new_entries = new_entries[:budget]
                budget -= len(new_entries)
            from monitor.pagework import NOT_THE_ARTICLE  # here: not imported before a first poll

            # Every page is fetched and extracted at once (in the extraction processes), and each
            # article is stored as soon as it and those before it are ready: storing overlaps
            # with extracting the rest instead of waiting for the whole batch.
            # Each page is let go once its article is stored (a list of the tasks would keep every
            # extracted page of the batch, text and story prints, until the last is stored).
            # A source whose latest pages were all walls (``WALL_RUN``): one page is fetched
            # first, as a probe; the others only if it is the article (the wall is gone).
            walled = (sc.full_text and len(new_entries) > 1 and await loop.run_in_executor(
                _LOOKUP_POOL, contextvars.copy_context().run, self._walled, source_id))
            pages = (deque(asyncio.ensure_future(self._fetch_page(sc, e)) for e in new_entries[:1 if walled else None])
                     if sc.full_text else None)
            walls = 0
            try:
                for i, entry in enumerate(new_entries):
                    if walled and i == 1 and walls == 0:  # the probe was the article: fetch the others
                        assert pages is not None
                        pages.extend(asyncio.ensure_future(self._fetch_page(sc, e)) for e in new_entries[1:])
                        walled = False
                    page: Page | None
                    page_error: str | None
                    if walled and i >= 1:
                        page, page_error = None, WALLED
                    else:
                        page, page_error = await pages.popleft() if pages is not None else (None, None)
                        walls += page_error == NOT_THE_ARTICLE
                    await self._store(loop, source_id, sc, entry, page, page_error, report)
            finally:
                for task in pages or ():
                    task.cancel()
            if walled:
                report.warnings.append(f"the source's last {WALL_RUN} pages were not the articles (a consent or bot "
                                       f"wall?): 1 of {len(new_entries)} pages fetched, as a probe, and it was not "
                                       f"either; the feed's text was stored for the others")
                log.warning("source %s (%s): %s", source_id, sc.name, report.warnings[-1])
            if changed:
                await self._reread_changed(loop, source_id, sc, changed, report)
            if not walled and walls >= 2 and 2 * walls >= len(new_entries):
                # Said once a poll, not only per article: the source's pages are fetched in vain.
                report.warnings.append(f"{walls} of {len(new_entries)} pages were not the articles their entries "
                                       f"describe (a consent or bot wall?): the feed's text was stored; "
                                       f"full_text = false would not fetch them")
                log.warning("source %s (%s): %s", source_id, sc.name, report.warnings[-1])
            if outcome.more:
                break
        if report.deferred:
            # Entries the database refused for now: the next poll reads the source again without
            # validators (no 304 hides them), within min_interval, and takes them.
            outcome.more = True
        # Only after every new article is stored: a crash before this commit re-polls the
        # source with its old validators (and finds those articles stored), never skips one.
        await self._record_poll(report, source_id, sc, started, outcome, release_lease, read=True)
        log.info("source %s (%s): %s, %s, %s%s", source_id, sc.name, plural(report.entries, "entry"),
                 plural(report.new_articles, "new article"), plural(report.alerts, "alert"),
                 f", {plural(report.updated_articles, 'updated article')}" if report.updated_articles else "")
        return report

    async def _store(self, loop: asyncio.AbstractEventLoop, source_id: int, sc: SourceConfig, entry: FeedEntry,
                     page: Page | None, page_error: str | None, report: PollReport) -> None:
        """Store one article off the event loop (story and matching are CPU and database work):
        fetches, deliveries and lease renewals of other sources keep their timing meanwhile."""
        try:
            n_alerts = await loop.run_in_executor(_INGEST_POOL, contextvars.copy_context().run, self._ingest,
                                                  source_id, sc, entry, page, page_error)
        except EmbedderUnavailable:
            # The model (checked at start, loaded with the first article) failed to load: not the
            # entry's fault. The poll fails and keeps its old validators, so its entries come again.
            raise
        except EntryDeferred as exc:
            log.warning("source %s (%s): entry %s not stored now, the next poll takes it again: %s", source_id,
                        sc.name, entry.url, exc)
            report.warnings.append(f"entry {entry.url}: not stored now, the next poll takes it again: {exc}")
            report.deferred += 1
            return
        except Exception as exc:  # a bad entry drops only itself
            log.warning("source %s (%s): entry %s not stored: %s: %s", source_id, sc.name,
                        entry.url, type(exc).__name__, exc, exc_info=True)
            report.warnings.append(f"entry {entry.url}: not stored: {type(exc).__name__}: {exc}")
            return
        if n_alerts is not None:
            report.new_articles += 1
            report.alerts += n_alerts

    async def _reread_changed(self, loop: asyncio.AbstractEventLoop, source_id: int, sc: SourceConfig,
                              changed: list[tuple[FeedEntry, int]], report: PollReport) -> None:
        """Read again the stored articles whose entries changed (``_lookup``): each page fetched
        and extracted as a new one's, then the article updated and matched (``_reread``). A
        source whose pages are walls (``_walled``) is read from its feed's text only."""
        fetch = sc.full_text and not await loop.run_in_executor(_LOOKUP_POOL, contextvars.copy_context().run,
                                                                 self._walled, source_id)
        pages = deque(asyncio.ensure_future(self._fetch_page(sc, e)) for e, _ in changed) if fetch else None
        try:
            for entry, article_id in changed:
                page, page_error = await pages.popleft() if pages is not None else (None, None)
                try:
                    done = await loop.run_in_executor(_INGEST_POOL, contextvars.copy_context().run, self._reread,
                                                      source_id, sc, entry, article_id, page, page_error)
                except EmbedderUnavailable:
                    raise
                except Exception as exc:  # the article stays as it was; its entry's digest too
                    log.warning("source %s (%s): article %s: its entry changed but it was not read again: %s: %s",
                                source_id, sc.name, entry.url, type(exc).__name__, exc,
                                exc_info=not isinstance(exc, EntryDeferred))
                    report.warnings.append(f"entry {entry.url}: changed, not read again: {type(exc).__name__}: {exc}")
                    if not isinstance(exc, EntryDeferred):
                        # not at every poll: counted as a reading (MAX_REREADS, REREAD_GAP)
                        await loop.run_in_executor(_INGEST_POOL, self._count_reread, article_id)
                    continue
                if done is not None and done.changed:
                    report.updated_articles += 1
                    report.alerts += done.alerts
        finally:
            for task in pages or ():
                task.cancel()

    def _reread(self, source_id: int, sc: SourceConfig, entry: FeedEntry, article_id: int, page: Page | None,
                page_error: str | None) -> Reread | None:
        """Update one stored article from its changed entry and page, and match it again, in one
        transaction (``Ingest.reread``)."""
        from monitor.ingest import new_article

        ingest = self.ingest
        fresh = new_article(source_id, sc, entry, page.extracted if page is not None else None, page_error,
                            prints=page.prints if page is not None else None,
                            url=page.url if page is not None else None)
        try:
            with session_scope(self.engine) as s:
                done = ingest.reread(s, article_id, fresh, self._outlet(source_id, sc),
                                     self._article_vector if self.needs_embeddings else None)
        except (IntegrityError, OperationalError) as exc:
            if refusal(exc) in ("conflict", "foreign_key") or transient(exc):
                raise EntryDeferred(f"{type(exc).__name__}: {first_line(exc)}") from exc
            raise
        if done is not None and done.changed:
            log.info("article %s read again from %s: its entry changed: %s, %s", article_id, sc.name,
                     plural(done.matches, "match"), plural(done.alerts, "alert"))
        return done

    def _walled(self, source_id: int) -> bool:
        """Whether the source's latest ``WALL_RUN`` articles were all stored without their page
        because it was not the article (or not fetched for that reason): its pages are walls."""
        from monitor.pagework import NOT_THE_ARTICLE
        from monitor.store.page_health import latest_page_errors

        with self.engine.connect() as conn:
            errors = latest_page_errors(conn, source_id, WALL_RUN)
        return len(errors) == WALL_RUN and all(e in (NOT_THE_ARTICLE, WALLED) for e in errors)

    def _count_reread(self, article_id: int) -> None:
        """A reading that failed still counts (best effort): a page that always fails is not
        fetched at every poll."""
        from monitor.store.models import Article

        try:
            with session_scope(self.engine) as s:
                stored = s.get(Article, article_id)
                if stored is not None:
                    stored.reread_count += 1
                    stored.reread_at = datetime.now(UTC)
                    s.add(stored)
        except Exception as exc:
            log.warning("article %s: its reading could not be counted: %s", article_id, exc)

    def _lookup(self, source_id: int, entries: list[FeedEntry], now: datetime | None = None) -> Lookup:
        """The entries not stored yet (by canonical URL, or by GUID within this source), each URL
        once; and the stored articles of this source whose entry changed since they were read
        (``FeedEntry.digest``) and may be read again (``rereadable``). In Core: it runs before the
        first page fetch, and the ORM can come later.

        An entry is also looked up by its GUID and link (``link_key``): an entry stored while its
        feed gave its GUID to other links too (``keyed_by_link``) is found by that key when it
        stands alone later, not stored again, and not taken for the article of another link
        stored under the plain GUID."""
        if not entries:
            return Lookup([], [])
        from monitor.parse.urls import canonical_url

        canonical = [canonical_url(e.url) for e in entries]
        linked = [link_key(e.guid, e.url) for e in entries]
        seen: list[Any] = []
        a = ARTICLE_KEYS.c
        reread = self.config.fetch.reread_updates
        columns = [a.url, a.guid, a.source_id] + ([a.id, a.entry_digest, a.reread_count, a.reread_at,
                                                   a.first_seen_at, a.published, a.published_estimated]
                                                  if reread else [])
        with self.engine.connect() as conn:
            # In slices of entries (3 parameters each at most): one IN list per query stays far
            # below any database's parameter limit.
            for i in range(0, len(entries), ENTRY_BATCH):
                part = slice(i, i + ENTRY_BATCH)
                urls = sorted(set(canonical[part]))
                guids = sorted({e.guid for e in entries[part]} | set(linked[part]))
                # GUIDs count within this source only: (source_id, guid) is the unique index to use.
                seen.extend(conn.execute(core_select(*columns).where(
                    or_(a.url.in_(urls), and_(a.source_id == source_id, a.guid.in_(guids))))).all())
        seen_urls = {row[0] for row in seen}
        seen_guids = {row[1] for row in seen if row[2] == source_id}
        out, batch = [], set()
        for e, cu, key in zip(entries, canonical, linked, strict=True):
            if cu in seen_urls or e.guid in seen_guids or key in seen_guids or cu in batch:
                continue
            batch.add(cu)
            out.append(e)
        if not reread:
            return Lookup(out, [])
        # This source's own stored articles, by GUID and link first (stored so when the feed
        # shared the GUID), then by GUID (a link may change with the entry), then by link.
        mine = [row for row in seen if row[2] == source_id]
        by_guid = {row[1]: row for row in mine}
        by_url = {row[0]: row for row in mine}
        now = now or datetime.now(UTC)
        changed: list[tuple[FeedEntry, int]] = []
        taken: set[int] = set()
        for e, cu, key in zip(entries, canonical, linked, strict=True):
            row = by_guid.get(key) or by_guid.get(e.guid) or by_url.get(cu)
            if row is None or row.id in taken or not rereadable(row, self.config.monitor.alert_max_age, now):
                continue
            taken.add(row.id)
            if e.digest() != row.entry_digest:
                changed.append((e, row.id))
        if len(changed) >= REWRITTEN and len(changed) == len(taken):
            # Every stored entry changed at once: a feed that rewrites them (or stamps them with
            # the time of the request), not news; their digests are brought up to date instead.
            self._note_digests(changed)
            return Lookup(out, [], rewritten=len(changed))
        return Lookup(out, changed[:REREADS_PER_POLL])

    def _note_digests(self, changed: list[tuple[FeedEntry, int]]) -> None:
        """Store the entries' digests as their articles' (``Lookup.rewritten``), one statement."""
        t = ARTICLE_KEYS
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == bindparam("b_id")).values(entry_digest=bindparam("b_digest")),
                         [{"b_id": article_id, "b_digest": e.digest()} for e, article_id in changed])

    def _page_slots(self) -> asyncio.Semaphore:
        """Pages in hand at once, every source's together: downloading (at most ``[fetch]
        concurrency`` anyway) or downloaded and waiting for an extraction worker (a few per
        worker keep them busy). Downloads are much faster than extraction: without this bound
        every new page of a poll (hundreds: a sitemap's, a first poll's) sat in memory, whole,
        until a worker took it. A slot is given back when the page is extracted."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            from monitor.extract.pool import workers

            self._slots = (loop, asyncio.Semaphore(self.config.fetch.concurrency + PAGES_QUEUED * workers()))
        return self._slots[1]

    async def _fetch_page(self, sc: SourceConfig, entry: FeedEntry) -> tuple[Page | None, str | None]:
        if not entry.url.startswith(("http://", "https://")):
            return None, "the feed entry has no link"
        async with self._page_slots():
            return await self._fetch_and_extract(sc, entry)

    async def _fetch_and_extract(self, sc: SourceConfig, entry: FeedEntry) -> tuple[Page | None, str | None]:
        from monitor import pagework  # light (its names; the work itself runs in the workers)

        try:
            # A host that answered 429/503 with Retry-After is asked nothing (robots.txt included)
            # until then: the article is stored with the feed's text and says so.
            if robots_enabled(sc, self.config.fetch.robots) and not await self.fetcher.allowed(
                    entry.url, sc.allow_private_networks, respect_holds=True):
                raise FetchError(entry.url, "disallowed by robots.txt", kind="robots")
            from monitor.extract import pool as extract_pool

            extract_pool.warm_up_soon()  # the workers start while the page downloads
            resp = await self.fetcher.get(entry.url, accept=HTML_ACCEPT, allow_private=sc.allow_private_networks,
                                          respect_holds=True)
            # in a worker process: every core, and lxml is not thread-safe; with the story's
            # prints of the page (the ingest thread only decides and stores)
            page = await pagework.extract(resp.content, resp.final_url, resp.content_type, sc.timezone,
                                          entry.url, entry.title, self.config.dedup.events, entry.content_html)
        except FetchError as exc:
            # a held host's pages: one warning when the hold began (``HostHolds.note``), not one a page
            log.log(logging.INFO if exc.kind == "held" else logging.WARNING,
                    "source %s: article %s: page not fetched, using the feed's content: %s", sc.name, entry.url, exc)
            return None, str(exc)
        except pagework.NotTheArticle as exc:
            log.info("source %s: article %s: using the feed's content: %s", sc.name, entry.url, exc)
            return None, str(exc)
        except Exception as exc:
            log.warning("source %s: article %s: extraction failed, using the feed's content: %s", sc.name, entry.url, exc)
            return None, f"extraction failed: {exc}"
        if page is None:
            return None, "no article text found on the page"
        return page, None

    def _ingest(self, source_id: int, sc: SourceConfig, entry: FeedEntry, page: Page | None,
                page_error: str | None) -> int | None:
        """Store one article and its alerts in one transaction: the number of alerts created, None
        if it was a duplicate.

        The steps are in ``monitor.ingest``; the meaning vector (CPU-heavy) is computed before
        the transaction opens."""
        from monitor.ingest import new_article

        ingest = self.ingest  # prepared by now (queued first on this thread), or prepared here
        prints = page.prints if page is not None else None  # computed with the page, in its worker

        def article_of() -> Article:
            return new_article(source_id, sc, entry, page.extracted if page is not None else None, page_error,
                               prints=prints, url=page.url if page is not None else None)

        article = article_of()
        vector = self._article_vector(article) if self.needs_embeddings else None
        attempt = 0
        while True:
            attempt += 1
            try:
                with session_scope(self.engine) as s:
                    done = ingest.run(s, article, self._outlet(source_id, sc), vector, prints)
                break
            except (IntegrityError, OperationalError) as exc:
                why = refusal(exc)
                if why == "unique" and refused_table(exc) not in (None, "article"):
                    # Another table's key (a story's alert claim moved by a merge meanwhile, say):
                    # another instance's write crossed this one; run again, as a conflict.
                    why = "conflict"
                if why == "unique":
                    # Stored meanwhile (same canonical URL from another entry or another instance).
                    log.info("source %s: article %s not stored again: %s", sc.name, article.url,
                             self._clash(source_id, article))
                    return None
                if isinstance(exc, IntegrityError) and why != "foreign_key":
                    raise  # a value the schema refuses: the entry's own fault
                if why == "foreign_key" and attempt < 2:
                    # A row its story decision points at went away before the article's insert:
                    # another instance (or an analyst) merged its story away. Placed again, in a
                    # new transaction, it finds the story as it is now.
                    log.info("source %s: article %s: its story changed meanwhile, placing it again",
                             sc.name, article.url)
                elif why == "conflict" and attempt < CONFLICT_ATTEMPTS:
                    # PostgreSQL ended a deadlock (two instances taking rows in another order: an
                    # old and a new version during a rolling deploy) by aborting this transaction.
                    log.info("source %s: article %s: %s, running its transaction again", sc.name, article.url,
                             first_line(exc))
                    time.sleep(random.uniform(0.05, 0.2) * attempt)  # the other transaction ends first
                elif why in ("conflict", "foreign_key") or transient(exc):
                    # the database, not the entry: the next poll takes it again
                    raise EntryDeferred(f"{type(exc).__name__}: {first_line(exc)}") from exc
                else:  # refused for what it is (a URL too long for its index, say): every time
                    raise
                article = article_of()  # the failed try's story and id, rolled back, left behind
        story = done.story
        log.info("article %s stored from %s: %s (%s, story %s%s)", done.article_id, sc.name, article.url,
                 plural(done.matches, "match"), story.story_id, "" if story.new_story else
                 f", {'same event as' if story.same_event else 'copy of'} article {story.duplicate_of or story.similar_to}")
        return done.alerts  # alerts created: a copy joining an alerted story creates none

    def _clash(self, source_id: int, article: Article) -> str:
        """Which key of a stored article a refused insert clashed with, for the log: its link
        (any source's), or its GUID (this source's) with the other article's link. The log used
        to blame the link for a GUID that a feed gave to several items."""
        a = ARTICLE_KEYS.c
        with self.engine.connect() as conn:
            row = conn.execute(core_select(a.id).where(a.url == article.url)).first()
            if row is not None:
                return f"its link is stored already (article {row.id})"
            row = conn.execute(core_select(a.id, a.url).where(a.source_id == source_id,
                                                              a.guid == article.guid)).first()
        if row is not None:
            return f"its GUID {article.guid!r} is stored already, for article {row.id} ({row.url})"
        return "stored meanwhile (by another entry or another instance)"

    def _outlet(self, source_id: int, sc: SourceConfig) -> Source:
        """What ingest reads of the article's source row (its name), kept per source: reading
        the row again for every article cost a query each. Rows are found by name and never
        renamed or deleted (``sync_sources``), so the name cannot go stale; the object is never
        added to a session."""
        from monitor.store.models import Source

        src = self._outlets.get(source_id)
        if src is None or src.name != sc.name:
            src = self._outlets[source_id] = Source(id=source_id, name=sc.name, url=sc.url, kind=sc.type)
        return src

    @staticmethod
    def _article_vector(article: Article) -> Any:
        """The article's vector; None if the model fails on this text (the article is stored all
        the same: it still gets a story, by copies, and keyword rules still match it)."""
        from monitor.embed import article_text, get_embedder

        try:
            return get_embedder().embed([article_text(article.title, article.text)])[0]
        except Exception as exc:  # one strange page never loses the article
            log.warning("article %s: no sentence vector (%s: %s)", article.url, type(exc).__name__, exc)
            return None

    def _read_starts(self, s: Bound, asks: list[tuple[SourceConfig, bool, datetime]]) -> list[PollStart | None]:
        """What a batch of polls starts from, in one query: validators, the lease, and whether
        each source is due (``due_condition`` as of the earliest start, for ``force`` and not).

        Each rule is asked only if a poll of the batch reads it: the timer's rule names every
        source it applies to (one IN list each), and polls that all ignore the interval (``run
        --once --all``, a batch of forced polls) read only the other."""
        t = SOURCE
        now = min(started for _, _, started in asks)
        names = sorted({sc.name for sc, _, _ in asks})
        columns: list[ColumnElement[Any]] = [t.c.id, t.c.name, t.c.url, t.c.etag, t.c.last_modified, t.c.lease_owner,
                                             t.c.disabled_at]
        if any(force for _, force, _ in asks):
            columns.append(and_(*due_condition(now, everything=True)).label("forced"))
        timed = {sc.name: sc.interval for sc, force, _ in asks if not force}
        if timed:
            columns.append(and_(*due_condition(now, timer_intervals=timed)).label("timed"))
        rows = {row.name: row for row in s.connection().execute(core_select(*columns).where(t.c.name.in_(names)))}
        out: list[PollStart | None] = []
        for sc, force, _ in asks:
            row = rows.get(sc.name)
            out.append(None if row is None else PollStart(row.id, row.url, row.etag, row.last_modified, row.lease_owner,
                                                          row.disabled_at, bool(row.forced if force else row.timed)))
        return out

    async def _record_poll(self, report: PollReport, source_id: int, sc: SourceConfig, started: datetime,
                           outcome: PollOutcome, release_lease: str | None, read: bool = False) -> None:
        """The poll's outcome (schedule, validators, failures, notices), committed before this
        returns; ``read``: the source was read (not a 304, not an error): its warnings, none
        included, replace the last ones."""
        await self.records.submit(PollRecord(source_id, sc, started, outcome, release_lease,
                                             tuple(report.warnings) if read else None))
        report.lease_released = release_lease is not None

    def _write_polls(self, s: Session, records: list[PollRecord]) -> list[None]:
        """Apply a batch of poll outcomes in one transaction: the plain successes (most polls: a
        304, a feed read) by one UPDATE without reading the rows (``plain_success``), the rest
        by one read of their rows, one UPDATE per set of changed columns (executemany); the
        leases ended, the notices queued."""
        t = SOURCE
        conn = s.connection()
        polls = Counter(r.source_id for r in records)
        plain: list[dict[str, Any]] = []
        rest: list[PollRecord] = []
        for r in records:  # a source polled twice in the batch: in order, by apply_outcome
            values = plain_success(r.sc, r.outcome, self.config.fetch, r.started) if polls[r.source_id] == 1 else None
            if values is None:
                rest.append(r)
            else:
                values["b_id"] = r.source_id
                plain.append(values)
        if plain and conn.execute(_plain_update(), plain).rowcount != len(plain):
            # A row marked broken (its recovery sends a notice) or removed meanwhile: all of
            # them go through apply_outcome. The rows just written read back as their outcome
            # leaves them, so applying it again changes nothing there.
            rest = records
        if rest:
            self._apply_polls(s, rest)
        self._write_warnings(conn, records)
        ends = [{"b_id": r.source_id, "b_owner": r.release_lease} for r in records if r.release_lease]
        if ends:
            conn.execute(update(t).where(t.c.id == bindparam("b_id"), t.c.lease_owner == bindparam("b_owner"))
                         .values(lease_owner=None, lease_expires_at=None), ends)
        return [None] * len(records)

    @staticmethod
    def _write_warnings(conn: Any, records: list[PollRecord]) -> None:
        """The warnings of the polls that read their source (``source.last_warnings``, a JSON list,
        at most ``MAX_WARNINGS``): set where a poll had some, cleared where it had none and some
        were stored. Polls that did not read (a 304, an error) leave them as they are."""
        import json

        t = SOURCE
        latest = {r.source_id: r for r in records if r.warnings is not None}  # a source's last poll
        said = [{"b_id": r.source_id, "b_w": json.dumps(list(r.warnings[:MAX_WARNINGS]), ensure_ascii=False),
                 "b_at": r.started} for r in latest.values() if r.warnings]
        quiet = [{"b_id": r.source_id} for r in latest.values() if not r.warnings]
        if said:
            conn.execute(update(t).where(t.c.id == bindparam("b_id"))
                         .values(last_warnings=bindparam("b_w"), last_warnings_at=bindparam("b_at")), said)
        if quiet:
            conn.execute(update(t).where(t.c.id == bindparam("b_id"), t.c.last_warnings.is_not(None))
                         .values(last_warnings=None, last_warnings_at=None), quiet)

    def _apply_polls(self, s: Session, records: list[PollRecord]) -> None:
        """``apply_outcome`` on each record's row, read in one query; the changed columns written."""
        t = SOURCE
        conn = s.connection()
        cols = PollState.columns()
        ids = sorted({r.source_id for r in records})
        states = {row[0]: PollState(*row) for row in conn.execute(
            core_select(*(t.c[name] for name in cols)).where(t.c.id.in_(ids)))}
        before = {sid: state.values() for sid, state in states.items()}
        target = self.config.monitor.source_errors_to
        for r in records:  # in order: two polls of one source in a batch count as two
            state = states.get(r.source_id)
            if state is None:
                log.warning("source %s (%s): removed before its poll was recorded", r.source_id, r.sc.name)
                continue
            notices = apply_outcome(state, r.sc, r.outcome, self.config.fetch, r.started)
            for n in notices:
                if target:
                    from monitor.alerts import enqueue_notice

                    enqueue_notice(s, (target,), n.subject, n.text, n.key)
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for sid, state in states.items():
            changed = state.changes(before[sid])
            if changed:
                by_columns.setdefault(tuple(sorted(changed)), []).append(
                    {"b_id": sid, **{f"b_{name}": value for name, value in changed.items()}})
        for names, params in by_columns.items():
            conn.execute(update(t).where(t.c.id == bindparam("b_id"))
                         .values({name: bindparam(f"b_{name}") for name in names}), params)

    # -- delivery --------------------------------------------------------------------------
    async def deliver(self) -> DeliveryReport:
        """Send what is due; each channel's connection stays open for the next time (``aclose``
        ends it)."""
        return await self.deliverer.run(keep_connections=True)

    async def run_once(self, everything: bool = False, last: bool = False) -> list[PollReport]:
        """Poll what is due (or everything), then deliver what is pending.

        ``last``: nothing is extracted after this (``run --once``): the extraction workers stop
        while the deliveries go out, instead of after them, on the way out of the process."""
        self.sync_sources()
        due, first_poll = self.due_sources(everything=everything)
        if first_poll:
            # Every page of a source's first poll is new: the extraction workers start now,
            # while the feeds download, instead of with the first page (their start, ~1 s, was
            # on the way to the first article).
            from monitor.extract import pool as extract_pool

            extract_pool.warm_up_soon()
        reports = list(await asyncio.gather(*(self.poll(sc, force=everything) for sc in due)))
        pool = sys.modules.get("monitor.extract.pool") if last else None  # imported by a first page
        stopping = asyncio.ensure_future(asyncio.to_thread(pool.shutdown)) if pool is not None else None
        try:
            await self.deliver()
        finally:
            if stopping is not None:
                await stopping
        return reports

