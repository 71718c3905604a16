"""Politeness against real loopback servers: validators, 304, Retry-After, backoff, moves, 410."""

from __future__ import annotations

import asyncio
import functools
import gzip
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import brotli
import pytest
import zstandard

from monitor import __version__
from tests.fetch_helpers import (
    articles,
    make_due,
    requests_to,
    run_once,
    site_on,
    source_row,
)
from tests.harness import run_monitor, source, write_config
from tests.newsroom import rss
from tests.servers import Page, Request, Site

NOW = datetime(2025, 9, 24, 7, 15, tzinfo=UTC)


def _feed(site: Site, n: int = 2, ttl: int | None = None) -> bytes:
    body = rss(site, [(f"/a/{i}", f"Story number {i}", NOW - timedelta(minutes=i)) for i in range(n)])
    if ttl is not None:
        body = body.replace(b"<description>News</description>", f"<description>News</description><ttl>{ttl}</ttl>".encode())
    return body


def test_validators_sent_back_byte_exact_and_304_parses_nothing(tmp_path: Path, database_url: str, site: Site) -> None:
    etag = 'W/"5f-\u00e9t\u00e0g ; x"'.encode().decode("latin-1")  # odd bytes survive the round trip
    last_mod = "Wed, 24 Sep 2025 07:15:00 GMT"
    feed = _feed(site)

    def handler(req: Request) -> Page:
        if req.headers.get("if-none-match") == etag and req.headers.get("if-modified-since") == last_mod:
            return Page(b"", "application/rss+xml", 304, {"ETag": etag})
        return Page(feed, "application/rss+xml", 200, {"ETag": etag, "Last-Modified": last_mod})

    site.pages["/feed.xml"] = handler
    cfg = write_config(tmp_path / "config.toml", database_url, source("F", site.url("/feed.xml"), full_text=False))
    [first] = asyncio.run(run_once(cfg))
    assert first.status == "ok" and first.new_articles == 2
    row = source_row(cfg, "F")
    assert (row.etag, row.last_modified) == (etag, last_mod)

    [second] = asyncio.run(run_once(cfg, everything=True))
    feed_reqs = [r for r in site.requests if r.path == "/feed.xml"]
    assert feed_reqs[1].headers["if-none-match"] == etag
    assert feed_reqs[1].headers["if-modified-since"] == last_mod
    assert second.status == "not_modified" and second.entries == 0 and second.new_articles == 0
    assert len(articles(cfg)) == 2


def test_no_validator_is_invented(tmp_path: Path, site: Site) -> None:
    site.pages["/feed.xml"] = Page(_feed(site), "application/rss+xml")  # no ETag, no Last-Modified
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("F", site.url("/feed.xml"), full_text=False))
    asyncio.run(run_once(cfg))
    asyncio.run(run_once(cfg, everything=True))
    second = [r for r in site.requests if r.path == "/feed.xml"][1]
    assert "if-modified-since" not in second.headers and "if-none-match" not in second.headers


def test_user_agent_and_compression(tmp_path: Path, site: Site) -> None:
    feed = _feed(site, 3)
    site.pages["/gz.xml"] = Page(gzip.compress(feed), "application/rss+xml", headers={"Content-Encoding": "gzip"})
    site.pages["/br.xml"] = Page(brotli.compress(feed.replace(b"/a/", b"/b/")), "application/rss+xml",
                                 headers={"Content-Encoding": "br"})
    site.pages["/zs.xml"] = Page(zstandard.ZstdCompressor().compress(feed.replace(b"/a/", b"/z/")),
                                 "application/rss+xml", headers={"Content-Encoding": "zstd"})
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                    "".join(source(n, site.url(f"/{n}.xml"), full_text=False) for n in ("gz", "br", "zs")))
    reports = asyncio.run(run_once(cfg))
    assert sorted((r.source, r.new_articles) for r in reports) == [("br", 3), ("gz", 3), ("zs", 3)]
    req = site.requests[0]
    for enc in ("gzip", "br", "zstd"):
        assert enc in req.headers["accept-encoding"]
    assert f"monitor/{__version__}" in req.headers["user-agent"]
    assert "https://example.org/contact" in req.headers["user-agent"]


def test_retry_after_seconds_is_honoured_across_runs(tmp_path: Path, site: Site) -> None:
    site.pages["/feed.xml"] = Page(b"busy", "text/plain", 503, {"Retry-After": "3600"})
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("F", site.url("/feed.xml"), interval="2s"))
    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 3, res.stderr  # every polled source failed: cron is told (issue 16.5)
    assert "HTTP 503" in res.stderr
    row = source_row(cfg, "F")
    wait = (row.next_poll_at.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()  # type: ignore[union-attr]
    assert 3500 < wait <= 3600
    # Neither a new run nor --all polls it before the hour is over; --all says so, and until when.
    until = f"{row.next_poll_at:%Y-%m-%d %H:%M:%S} UTC"
    for args in (("run", "--once"), ("run", "--once", "--all")):
        res = run_monitor(cfg, *args)
        assert res.returncode == 0, res.stderr
    assert f"source F not polled by --all: backing off after 1 failure in a row until {until}" in res.stderr
    assert requests_to(site, "/feed.xml") == 1


def test_retry_after_http_date_on_429(tmp_path: Path, site: Site) -> None:
    when = datetime.now(UTC) + timedelta(minutes=30)
    site.pages["/feed.xml"] = Page(b"slow down", "text/plain", 429, {"Retry-After": format_datetime(when, usegmt=True)})
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("F", site.url("/feed.xml"), interval="2s"))
    asyncio.run(run_once(cfg))
    asyncio.run(run_once(cfg, everything=True))
    assert requests_to(site, "/feed.xml") == 1
    row = source_row(cfg, "F")
    assert abs((row.next_poll_at.replace(tzinfo=UTC) - when).total_seconds()) < 5  # type: ignore[union-attr]


def test_cache_hints_lengthen_but_never_shorten_the_interval(tmp_path: Path, site: Site) -> None:
    site.pages["/long.xml"] = Page(_feed(site), "application/rss+xml", headers={"Cache-Control": "public, max-age=86400"})
    site.pages["/short.xml"] = Page(_feed(site), "application/rss+xml", headers={"Cache-Control": "max-age=0"})
    site.pages["/ttl.xml"] = Page(_feed(site, ttl=30), "application/rss+xml")
    site.pages["/exp.xml"] = Page(_feed(site), "application/rss+xml",
                                  headers={"Expires": format_datetime(datetime.now(UTC) + timedelta(minutes=20), usegmt=True)})
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                    "".join(source(n, site.url(f"/{n}.xml"), interval="3s", full_text=False)
                            for n in ("long", "short", "ttl", "exp")),
                    fetch='min_interval = "1m"\nmax_interval = "2h"')
    started = datetime.now(UTC)
    asyncio.run(run_once(cfg))

    def wait(name: str) -> float:
        return (source_row(cfg, name).next_poll_at.replace(tzinfo=UTC) - started).total_seconds()  # type: ignore[union-attr]

    assert 7190 < wait("long") < 7210  # a day, clamped to max_interval
    assert wait("short") < 10  # the user's 3 s, not floored by min_interval
    assert 1790 < wait("ttl") < 1810  # <ttl>30</ttl>
    assert 1100 < wait("exp") < 1210


def test_backoff_then_broken_notice_then_recovery(tmp_path: Path, site: Site, caplog: pytest.LogCaptureFixture) -> None:
    site.pages["/feed.xml"] = Page(b"oops", "text/plain", 500)
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("Flaky", site.url("/feed.xml"), interval="10s"),
                    fetch="broken_after = 3")
    caplog.set_level(logging.INFO)
    waits = []
    for i in range(4):
        if i:
            # A failing source is not polled early, not even with --all ...
            asyncio.run(run_once(cfg, everything=True))
            assert requests_to(site, "/feed.xml") == i
            make_due(cfg, "Flaky")  # ... only once its backoff has passed.
        started = datetime.now(UTC)
        asyncio.run(run_once(cfg))
        row = source_row(cfg, "Flaky")
        waits.append((row.next_poll_at.replace(tzinfo=UTC) - started).total_seconds())  # type: ignore[union-attr]
        assert row.consecutive_failures == i + 1
    assert all(10 <= w <= 10 * 2 ** (n + 1) + 1 for n, w in enumerate(waits)), waits
    broken = [r for r in caplog.records if "broken" in r.getMessage() and "Flaky" in r.getMessage()]
    assert len(broken) == 1 and "failed 3 polls in a row" in broken[0].getMessage()
    assert source_row(cfg, "Flaky").broken_since is not None

    site.pages["/feed.xml"] = Page(_feed(site), "application/rss+xml")
    make_due(cfg, "Flaky")
    caplog.clear()
    [report] = asyncio.run(run_once(cfg))
    assert report.status == "ok"
    assert any("recovered" in r.getMessage() for r in caplog.records)
    row = source_row(cfg, "Flaky")
    assert row.consecutive_failures == 0 and row.broken_since is None


def test_permanent_redirect_updates_url_temporary_does_not(tmp_path: Path, site: Site,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    site.pages["/old.xml"] = Page(b"", "text/plain", 301, {"Location": "/new.xml"})
    site.pages["/old308.xml"] = Page(b"", "text/plain", 308, {"Location": "/new308.xml"})
    site.pages["/tmp.xml"] = Page(b"", "text/plain", 302, {"Location": "/new.xml"})
    site.pages["/new.xml"] = Page(_feed(site), "application/rss+xml")
    site.pages["/new308.xml"] = Page(_feed(site), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                    source("Moved", site.url("/old.xml"), full_text=False) + source("Temp", site.url("/tmp.xml"), full_text=False)
                    + source("Moved308", site.url("/old308.xml"), full_text=False))
    with caplog.at_level(logging.WARNING):
        asyncio.run(run_once(cfg))
    assert source_row(cfg, "Moved").url == site.url("/new.xml")
    assert source_row(cfg, "Moved308").url == site.url("/new308.xml")
    assert source_row(cfg, "Temp").url == site.url("/tmp.xml")
    assert any("permanent redirect (301)" in r.getMessage() and site.url("/new.xml") in r.getMessage()
               for r in caplog.records)
    asyncio.run(run_once(cfg, everything=True))
    assert requests_to(site, "/old.xml") == 1 and requests_to(site, "/old308.xml") == 1
    assert requests_to(site, "/tmp.xml") == 2


def test_gone_disables_the_source(tmp_path: Path, site: Site, caplog: pytest.LogCaptureFixture) -> None:
    site.pages["/feed.xml"] = Page(b"gone", "text/plain", 410)
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("Gone", site.url("/feed.xml")))
    caplog.set_level(logging.INFO)
    asyncio.run(run_once(cfg))
    assert source_row(cfg, "Gone").disabled_at is not None
    assert any("gone (410)" in r.getMessage() for r in caplog.records)
    asyncio.run(run_once(cfg, everything=True))
    assert requests_to(site, "/feed.xml") == 1


def test_polling_state_survives_restart(tmp_path: Path, database_url: str, site: Site) -> None:
    site.pages["/ok.xml"] = Page(_feed(site), "application/rss+xml", headers={"ETag": '"v1"'})
    site.pages["/bad.xml"] = Page(b"no", "text/plain", 500)
    cfg = write_config(tmp_path / "config.toml", database_url, source("Ok", site.url("/ok.xml"), full_text=False)
                    + source("Bad", site.url("/bad.xml")))
    asyncio.run(run_once(cfg))
    for _ in range(2):  # two restarts: nothing is due, nothing is fetched
        asyncio.run(run_once(cfg))
    assert requests_to(site, "/ok.xml") == 1 and requests_to(site, "/bad.xml") == 1
    bad = source_row(cfg, "Bad")
    assert bad.consecutive_failures == 1 and bad.last_error and "HTTP 500" in bad.last_error
    assert source_row(cfg, "Ok").etag == '"v1"'


def test_per_host_and_global_limits(tmp_path: Path) -> None:
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    total = [0, 0]
    lock = threading.Lock()

    def slow(req: Request, host: str) -> Page:
        with lock:
            active[host] = active.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), active[host])
            total[0] += 1
            total[1] = max(total[1], total[0])
        time.sleep(0.25)
        with lock:
            active[host] -= 1
            total[0] -= 1
        return Page(b"<rss version='2.0'><channel><title>t</title></channel></rss>", "application/rss+xml")

    sites = []
    for h in ("127.0.0.1", "127.0.0.2"):
        s = site_on(h)
        for i in range(5):
            s.pages[f"/f{i}.xml"] = functools.partial(slow, host=h)
        sites.append((h, s))
    try:
        srcs = "".join(source(f"{h}-{i}", f"http://{h}:{s.port}/f{i}.xml", full_text=False)
                       for h, s in sites for i in range(5))
        cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", srcs, fetch="per_host = 2\nconcurrency = 3")
        reports = asyncio.run(run_once(cfg))
        assert all(r.status == "ok" for r in reports), [r.error for r in reports]
        assert peak == {"127.0.0.1": 2, "127.0.0.2": 2}
        assert total[1] == 3
    finally:
        for _, s in sites:
            s.stop()


def test_backoff_full_jitter_capped_and_retry_after_forms() -> None:
    import random

    from monitor.config import FetchSettings
    from monitor.fetch.schedule import backoff_delay, delay_after_failure, retry_after_seconds

    s = FetchSettings(max_backoff=6 * 3600)
    rng = random.Random(7)
    for failures in (1, 3, 8, 30, 500):
        delays = [backoff_delay(300, failures, s, rng) for _ in range(200)]
        ceiling = min(6 * 3600, 300 * 2 ** failures)
        assert all(300 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered across the range, not fixed
    assert backoff_delay(86400, 3, s, rng) == 86400  # never sooner than the source's own interval
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Wed, 01 Jan 2025 01:00:00 GMT", now) == 3600
    assert retry_after_seconds("soon", now) is None
    assert delay_after_failure(10, 1, 10 * 86400, s, rng) == 6 * 3600  # Retry-After capped too


def test_claimed_source_is_polled_and_its_backoff_written(tmp_path: Path, database_url: str, site: Site) -> None:
    """The daemon's claim loop moves next_poll_at one interval ahead before polling (its crash
    guard); the poll must still happen, and write the backoff schedule the claim cannot know."""
    from monitor.config import load_config
    from monitor.pipeline import Pipeline
    from monitor.store.db import create_db_engine, upgrade
    from monitor.store.leases import claim_due_sources, release_leases

    site.pages["/feed.xml"] = Page(b"busy", "text/plain", 503, {"Retry-After": "900"})
    cfg = write_config(tmp_path / "config.toml", database_url, source("Claimed", site.url("/feed.xml"), interval="5s"))
    config = load_config(cfg)

    async def main() -> list[str]:
        engine = create_db_engine(config.database_url)
        upgrade(engine)
        p = Pipeline(config, engine)
        p.sync_sources()
        statuses = []
        for _ in range(2):
            claims = claim_due_sources(engine, "me", {"Claimed": 5.0}, limit=10, lease=60)
            for claim in claims:
                assert claim.name == "Claimed"
                statuses.append((await p.poll(config.sources[0])).status)
            release_leases(engine, "me", [c.source_id for c in claims])
        await p.aclose()
        engine.dispose()
        return statuses

    assert asyncio.run(main()) == ["error"]  # polled once; then not due for Retry-After's 15 min
    wait = (source_row(cfg, "Claimed").next_poll_at.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()  # type: ignore[union-attr]
    assert 880 < wait <= 900
    assert requests_to(site, "/feed.xml") == 1
