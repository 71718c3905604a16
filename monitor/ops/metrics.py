"""Prometheus metrics, all named ``monitor_*``.

Two kinds: counters of what this process did (polls, their duration, articles ingested), and
gauges read from the database at scrape time (lag, broken sources, matches by rule, deliveries by
channel and status, the outbox), which describe the whole deployment whichever instance is
scraped. Database reads are cached briefly so a tight scrape interval costs little.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from monitor import __version__
from monitor.store.leases import due_condition
from monitor.store.models import METADATA, OPEN_DELIVERY_STATUSES
from monitor.util import aware

disable_created_metrics()  # no *_created series: noise for every counter
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # CPU seconds, resident memory, open fds
PlatformCollector(registry=REGISTRY)

BUILD = Info("monitor_build", "Version of monitor and Python running.", registry=REGISTRY)
BUILD.info({"version": __version__, "python": platform.python_version()})
POLLS = Counter("monitor_polls", "Source polls by result (ok, not_modified, error).", ["result"],
                registry=REGISTRY)
POLL_SECONDS = Histogram("monitor_poll_duration_seconds", "Time of one source poll, pages included.",
                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120), registry=REGISTRY)
ARTICLES = Counter("monitor_articles_ingested", "New articles stored by this instance.", registry=REGISTRY)
ALERTS = Counter("monitor_alerts_enqueued", "Alerts put in the outbox by this instance.", registry=REGISTRY)
DEFERRED = Counter("monitor_entries_deferred",
                   "New entries the database refused for its own state (locked, unreachable, full, read-only), "
                   "left to the source's next poll.", registry=REGISTRY)
TAKEOVERS = Counter("monitor_lease_takeovers", "Sources taken over after another instance's lease expired.",
                    registry=REGISTRY)
RELOADS = Counter("monitor_config_reloads", "SIGHUP reloads by result (ok, rejected).", ["result"],
                  registry=REGISTRY)


def observe_poll(result: str, seconds: float, new_articles: int, alerts: int, deferred: int) -> None:
    POLLS.labels(result).inc()
    POLL_SECONDS.observe(seconds)
    ARTICLES.inc(new_articles)
    ALERTS.inc(alerts)
    # Counted per entry each time it is left: a lasting outage keeps it rising, poll after poll.
    DEFERRED.inc(deferred)


class DatabaseCollector(Collector):
    """Gauges computed from the database when scraped (cached ``ttl`` seconds)."""

    def __init__(self, engine: Engine, ttl: float = 5.0):
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = 0.0
        self._cached: list[Metric] = []

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to check for clashes; and registering must not query the database

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                self._cached = self._read()
                self._at = time.monotonic()
            return list(self._cached)

    def _read(self) -> list[Metric]:
        tables = METADATA.tables
        src, match, delivery = tables["source"], tables["match"], tables["delivery"]
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            due_where = due_condition(now)
            oldest_due = conn.execute(select(func.min(src.c.next_poll_at)).where(*due_where)).scalar()
            due = conn.execute(select(func.count()).select_from(src).where(*due_where)).scalar() or 0
            broken = conn.execute(select(func.count()).select_from(src)
                                  .where(src.c.broken_since.is_not(None))).scalar() or 0
            by_rule = conn.execute(select(match.c.rule, func.count()).group_by(match.c.rule)).all()
            by_channel = conn.execute(select(delivery.c.channel, delivery.c.status, func.count())
                                      .group_by(delivery.c.channel, delivery.c.status)).all()
            # Not delivered yet: waiting, retrying, or being sent (claimed under a lease, also one
            # whose instance died and that waits for its lease to expire). "sent", "dead", and
            # those held for a digest ("digest", "batched": the digest delivery counts) are not.
            pending_where = delivery.c.status.in_(OPEN_DELIVERY_STATUSES)
            pending = conn.execute(select(func.count()).select_from(delivery).where(pending_where)).scalar() or 0
            oldest_pending = conn.execute(select(func.min(delivery.c.created_at)).where(pending_where)).scalar()

        def age(ts: datetime | None) -> float:
            if ts is None:
                return 0.0
            return max(0.0, (now - aware(ts)).total_seconds())

        lag = GaugeMetricFamily("monitor_source_lag_seconds",
                                "How late the most overdue source is (0 when none is overdue).", value=age(oldest_due))
        sdue = GaugeMetricFamily("monitor_sources_due", "Sources due for a poll now.", value=due)
        sbroken = GaugeMetricFamily("monitor_sources_broken", "Sources whose last polls failed.", value=broken)
        matches = GaugeMetricFamily("monitor_matches", "Stored matches by rule.", labels=["rule"])
        for rule, n in by_rule:
            matches.add_metric([rule], n)
        deliveries = GaugeMetricFamily("monitor_deliveries", "Deliveries by channel and status.",
                                       labels=["channel", "status"])
        for channel, status, n in by_channel:
            deliveries.add_metric([channel, status], n)
        outbox = GaugeMetricFamily("monitor_outbox_pending",
                                   "Deliveries not sent yet (waiting, retrying or being sent).", value=pending)
        outbox_age = GaugeMetricFamily("monitor_outbox_oldest_pending_age_seconds",
                                       "Age of the oldest delivery not sent yet.", value=age(oldest_pending))
        return [lag, sdue, sbroken, matches, deliveries, outbox, outbox_age]


_db_collector: DatabaseCollector | None = None


def attach_database(engine: Engine) -> None:
    """Expose the database gauges of ``engine`` (one engine per process)."""
    global _db_collector
    if _db_collector is not None:
        REGISTRY.unregister(_db_collector)
    _db_collector = DatabaseCollector(engine)
    REGISTRY.register(_db_collector)


def detach_database() -> None:
    global _db_collector
    if _db_collector is not None:
        REGISTRY.unregister(_db_collector)
        _db_collector = None


def render() -> bytes:
    return generate_latest(REGISTRY)
