"""A host that answers an article page with 429/503 and Retry-After is asked nothing more until
then: not the rest of the poll's pages, not its robots.txt, not the pages of the next polls.
The articles are stored with the feed's text and say why (real servers on 127.0.0.1 and
127.0.0.2, both databases)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from monitor.config import FetchSettings
from monitor.fetch import Fetcher, FetchError
from monitor.fetch.holds import HostHolds
from tests.fetch_helpers import articles, run_once, site_on
from tests.harness import source, write_config
from tests.newsroom import rss
from tests.servers import Page, Site

NOW = datetime.now(UTC).replace(microsecond=0)
NO_EVENTS = "[dedup]\nevents = false\n"  # no sentence model to load: these stories need none
UNTIL = re.compile(r"held by 127\.0\.0\.2's Retry-After \(HTTP (\d+)\) until (\S+ \S+) UTC")


def _feed_of(site: Site, pages: Site, stem: str, n: int = 10) -> bytes:
    """A feed on ``site`` whose ``n`` entries link to pages on the other host ``pages``."""
    body = rss(site, [(f"/{stem}/{i}", f"Report {stem} {i}", NOW - timedelta(minutes=i)) for i in range(n)])
    return body.replace(site.base.encode() + f"/{stem}/".encode(), pages.base.encode() + f"/{stem}/".encode())


def _answer_all(pages: Site, stem: str, page: Page, n: int = 10) -> None:
    for i in range(n):
        pages.pages[f"/{stem}/{i}"] = page


def _to_pages(pages: Site) -> list[str]:
    return [r.path for r in pages.requests]


def _held_until(error: str | None) -> datetime:
    m = UNTIL.search(error or "")
    assert m, error
    return datetime.strptime(m.group(2), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def test_a_429_retry_after_holds_the_host_for_the_run_and_the_next_ones(tmp_path: Path, database_url: str,
                                                                         site: Site) -> None:
    pages = site_on("127.0.0.2")
    try:
        _answer_all(pages, "a", Page(b"slow down", "text/plain", 429, {"Retry-After": "3600"}))
        site.pages["/one.xml"] = Page(_feed_of(site, pages, "a"), "application/rss+xml")
        cfg = write_config(tmp_path / "config.toml", database_url, source("One", site.url("/one.xml")),
                           tables=NO_EVENTS)
        [report] = asyncio.run(run_once(cfg))
        assert report.new_articles == 10  # nothing lost: every entry stored, with the feed's text
        asked = [p for p in _to_pages(pages) if p != "/robots.txt"]
        # the requests in flight when the first 429 came back (per_host = 2 at once), no more
        assert 1 <= len(asked) <= 2, asked
        stored = articles(cfg)
        assert len(stored) == 10 and not any(a.full_text for a in stored)
        held = [a for a in stored if "held by" in (a.fetch_error or "")]
        assert len(held) == 10 - len(asked)
        for a in held:
            assert a.fetch_error is not None and a.fetch_error.startswith(a.original_url)
            until = _held_until(a.fetch_error)
            assert abs((until - (datetime.now(UTC) + timedelta(hours=1))).total_seconds()) < 60
        assert all("HTTP 429" in (a.fetch_error or "") for a in stored if a not in held)

        # Later, in the daemon's process (the same database's holds; a config
        # reload's new pipeline too): another feed's pages on that host are not asked for, nor
        # its robots.txt, which a new pipeline's fetcher has not read yet.
        before = len(pages.requests)
        site.pages["/two.xml"] = Page(_feed_of(site, pages, "b"), "application/rss+xml")
        _answer_all(pages, "b", Page(b"<html><body><p>fine</p></body></html>"))
        cfg = write_config(tmp_path / "config.toml", database_url, source("One", site.url("/one.xml")),
                           source("Two", site.url("/two.xml")), tables=NO_EVENTS)
        reports = asyncio.run(run_once(cfg))
        assert [(r.source, r.new_articles) for r in reports] == [("Two", 10)]  # One is not due
        assert pages.requests[before:] == []
        second = [a for a in articles(cfg) if "/b/" in a.original_url]
        assert len(second) == 10 and all(_held_until(a.fetch_error) > datetime.now(UTC) for a in second)
    finally:
        pages.stop()


def test_a_503_retry_after_date_is_honoured_and_capped_by_max_backoff(tmp_path: Path, site: Site) -> None:
    pages = site_on("127.0.0.2")
    try:
        # an HTTP date 30 minutes ahead: held until then
        when = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
        _answer_all(pages, "a", Page(b"busy", "text/plain", 503, {"Retry-After": format_datetime(when, usegmt=True)}))
        site.pages["/one.xml"] = Page(_feed_of(site, pages, "a"), "application/rss+xml")
        cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'a.db'}",
                           source("One", site.url("/one.xml")), tables=NO_EVENTS)
        asyncio.run(run_once(cfg))
        assert 1 <= len([p for p in _to_pages(pages) if p != "/robots.txt"]) <= 2
        held = [a for a in articles(cfg) if "held by" in (a.fetch_error or "")]
        assert len(held) >= 8
        assert all(abs((_held_until(a.fetch_error) - when).total_seconds()) <= 2 for a in held)
        assert "(HTTP 503)" in (held[0].fetch_error or "")

        # "come back in ten days" is held for [fetch] max_backoff, as a source's own Retry-After is
        _answer_all(pages, "c", Page(b"busy", "text/plain", 429, {"Retry-After": str(10 * 86400)}))
        site.pages["/three.xml"] = Page(_feed_of(site, pages, "c"), "application/rss+xml")
        cfg = write_config(tmp_path / "other.toml", f"sqlite:///{tmp_path / 'c.db'}",
                           source("Three", site.url("/three.xml")), fetch='max_backoff = "2h"',
                           tables=NO_EVENTS)
        asyncio.run(run_once(cfg))
        held = [a for a in articles(cfg) if "held by" in (a.fetch_error or "")]
        assert len(held) >= 8
        limit = datetime.now(UTC) + timedelta(hours=2)
        assert all(abs((_held_until(a.fetch_error) - limit).total_seconds()) < 60 for a in held)
    finally:
        pages.stop()


def test_a_hold_ends_when_retry_after_says(site: Site) -> None:
    """Pages of a held host are fetched again once its Retry-After has passed (the clock is the
    holds' own, moved by the test); a longer Retry-After is kept over a shorter one, and an
    answer without one (or another status) holds nothing."""
    clock = [1000.0]
    holds = HostHolds(clock=lambda: clock[0])
    site.pages["/busy"] = Page(b"busy", "text/plain", 429, {"Retry-After": "120"})
    site.pages["/short"] = Page(b"busy", "text/plain", 503, {"Retry-After": "5"})
    site.pages["/page"] = Page(b"<html><body><p>here</p></body></html>")
    settings = FetchSettings(allow_private_networks=True)

    async def main() -> list[str]:
        out: list[str] = []
        async with Fetcher(settings, holds=holds) as f:
            # (path, seconds passed before, respect_holds): a source's own poll is not held (its
            # schedule follows its own Retry-After), and its shorter Retry-After keeps the hold
            for path, move, respect in (("/busy", 0.0, True), ("/page", 0.0, True), ("/short", 0.0, False),
                                        ("/page", 6.0, True), ("/page", 113.0, True), ("/page", 1.0, True)):
                clock[0] += move
                try:
                    await f.get(site.url(path), respect_holds=respect)
                    out.append("ok")
                except FetchError as exc:
                    out.append(exc.kind)
        return out

    assert asyncio.run(main()) == ["http", "held", "http", "held", "held", "ok"]
    assert [r.path for r in site.requests] == ["/busy", "/short", "/page"]
    assert holds.note("127.0.0.1", 429, None, 3600) is None
    assert holds.note("127.0.0.1", 500, "60", 3600) is None
    assert holds.note("127.0.0.1", 429, "soon", 3600) is None
