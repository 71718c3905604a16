"""A listing page (or sitemap) naming thousands of links (issue 17.10): each poll fetches at most
``[fetch] max_links_per_poll`` new ones, in the page's order, and the next polls take the rest;
nothing is lost, not even behind a 304."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.util import aware
from tests.fetch_helpers import articles, make_due, run_once, source_row
from tests.harness import source, write_config
from tests.servers import Page, Request, Site

LINKS = 25
CAP = 10


def _article(i: int) -> Page:
    paragraphs = "".join(f"<p>Paragraph {j} of report {i} says what the council decided about the bridge "
                         f"and the budget for the coming year.</p>" for j in range(5))
    return Page(f"<html><head><title>Report {i}</title></head><body><article><h1>Report {i}</h1>{paragraphs}"
                "</article></body></html>".encode())


def _path(i: int) -> str:
    return f"/news/2025/09/council-report-number-{i}"

# Every page must be fetched for the counts below: a bound of 120 s, not the tests' default 10 s
# total timeout, which one loopback page exceeded at load 12-14 (it was then stored from the
# listing's text, and the poll's counts and requests were one page short). Timeouts are not
# under test here.
PAGES_IN_TIME = 'timeout = "120s"\n'


def test_a_listing_with_many_links_is_taken_a_few_per_poll_without_losing_any(tmp_path: Path, site: Site) -> None:
    links = "".join(f'<li><a href="{_path(i)}">Council report number {i} on the bridge</a></li>' for i in range(LINKS))
    listing = f"<html><body><main><ul>{links}</ul></main></body></html>".encode()

    def section(req: Request) -> Page:  # a server that honours validators: a 304 must not hide links
        if req.headers.get("if-none-match") == '"v1"':
            return Page(b"", status=304, headers={"ETag": '"v1"'})
        return Page(listing, headers={"ETag": '"v1"'})

    site.pages["/section"] = section
    for i in range(LINKS):
        site.pages[_path(i)] = _article(i)
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("Council", site.url("/section"), type="html", robots=False, interval="1h"),
                       fetch=PAGES_IN_TIME + f"max_links_per_poll = {CAP}")

    def page_requests() -> list[str]:
        return [r.path for r in site.requests if r.path.startswith("/news/")]

    stored_per_poll = []
    for poll in range(4):
        if poll:
            make_due(cfg, "Council")
        [report] = asyncio.run(run_once(cfg))
        assert report.status in ("ok", "not_modified"), report
        stored_per_poll.append(report.new_articles)
        row = source_row(cfg, "Council")
        assert row.next_poll_at is not None and row.last_polled_at is not None
        wait = aware(row.next_poll_at) - aware(row.last_polled_at)
        more = poll < 2
        assert any("max_links_per_poll" in w for w in report.warnings) is more, report.warnings
        if more:  # no validators kept, and back within min_interval (1 min) instead of the hour
            assert row.etag is None
            assert wait <= timedelta(seconds=60)
        else:
            assert wait >= timedelta(minutes=59)
    assert stored_per_poll == [CAP, CAP, LINKS - 2 * CAP, 0]
    # Each page fetched once, in the listing's order, a poll's share at a time.
    assert sorted(page_requests()) == sorted(_path(i) for i in range(LINKS))
    assert [a.url for a in articles(cfg)] == [site.url(_path(i)) for i in range(LINKS)]
    sent = [r.headers.get("if-none-match") for r in site.requests if r.path == "/section"]
    assert sent == [None, None, None, '"v1"']  # validators only after the last links were taken


def test_a_sitemap_with_many_urls_is_taken_newest_first_a_few_per_poll(tmp_path: Path, site: Site) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    urls = "".join(f"<url><loc>{site.url(_path(i))}</loc><lastmod>{(now - timedelta(minutes=i)).isoformat()}"
                   f"</lastmod></url>" for i in range(LINKS))
    site.pages["/sitemap.xml"] = Page(f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                                      f'sitemap/0.9">{urls}</urlset>'.encode(), "application/xml")
    for i in range(LINKS):
        site.pages[_path(i)] = _article(i)
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("Map", site.url("/sitemap.xml"), type="sitemap", robots=False, interval="1h"),
                       fetch=PAGES_IN_TIME + f"max_links_per_poll = {CAP}")
    [first] = asyncio.run(run_once(cfg))
    assert first.new_articles == CAP and any("max_links_per_poll" in w for w in first.warnings), first
    make_due(cfg, "Map")
    [second] = asyncio.run(run_once(cfg))
    assert second.new_articles == CAP
    # Newest first (the sitemap's dates), none twice.
    assert [a.url for a in articles(cfg)] == [site.url(_path(i)) for i in range(2 * CAP)]
