"""One poll of a source by its type: fetch it and turn it into ``FeedEntry`` items (see the
package's docstring)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import httpx

from monitor.config import SourceConfig
from monitor.fetch import Fetcher, FetchError, FetchResponse
from monitor.parse.budget import BudgetExceeded, off_loop
from monitor.parse.entry import FeedEntry, FeedParseError
from monitor.util import HTML_ACCEPT, parse_duration

if TYPE_CHECKING:
    from monitor.parse.feed import ParsedFeed
    from monitor.sources.sitemap import Sitemap, SitemapEntry

log = logging.getLogger(__name__)
T = TypeVar("T")

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
               "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8")
SITEMAP_ACCEPT = "application/xml, text/xml;q=0.9, */*;q=0.5"
DEFAULT_WINDOW = 2 * 86400.0
MAX_CHILD_SITEMAPS = 10


@dataclass
class SourceFetch:
    """One poll's result: entries (empty on 304) plus what the scheduler needs."""

    status: int
    entries: list[FeedEntry] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    ttl_minutes: int | None = None
    new_url: str | None = None
    new_url_reason: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def robots_enabled(sc: SourceConfig, default: bool) -> bool:
    return default if sc.robots is None else sc.robots


def _base(resp: FetchResponse) -> SourceFetch:
    moved = resp.permanent_url
    return SourceFetch(status=resp.status, etag=resp.etag, last_modified=resp.last_modified,
                       headers=resp.headers, new_url=moved,
                       new_url_reason=f"permanent redirect ({resp.redirects[0][0]})" if moved else "")


async def fetch_source(fetcher: Fetcher, sc: SourceConfig, url: str, etag: str | None = None,
                       last_modified: str | None = None, robots: bool = True) -> SourceFetch:
    """Fetch and parse ``url`` (the source's current address) by the source's type.

    Raises FetchError or FeedParseError with a message fit for the source's log line.
    """
    apn = sc.allow_private_networks
    if sc.type == "html" and robots and not await fetcher.allowed(url, apn):
        raise FetchError(url, "disallowed by robots.txt (set robots = false on the source to ignore it)",
                         kind="robots")
    accept = {"html": HTML_ACCEPT, "sitemap": SITEMAP_ACCEPT}.get(sc.type, FEED_ACCEPT)
    resp = await fetcher.get(url, etag=etag, last_modified=last_modified, accept=accept, allow_private=apn)
    out = _base(resp)
    if resp.not_modified:
        return out
    # The parsers (feedparser, BeautifulSoup) are imported here, once the response is in: the
    # daemon's first request goes out without waiting for them (README "Start-up time").
    if sc.type == "html":
        from monitor.sources.listing import article_links

        selector = sc.options.get("links")
        links = await _parse(resp, "listing page", functools.partial(article_links, resp.content, resp.final_url, selector))
        if not links:
            out.warnings.append("no article links found on the page" + (f" with links = {selector!r}" if selector else ""))
        out.entries = [FeedEntry(guid=link.url, url=link.url, title=link.title, content_html="", published=None)
                       for link in links]
        return out
    if sc.type == "sitemap":
        window = parse_duration(sc.options.get("window", DEFAULT_WINDOW))
        out.entries = await _sitemap_entries(fetcher, sc, resp, window, out.warnings)
        return out
    return await _feed(fetcher, sc, resp, out)


def looks_like_html(content: bytes, content_type: str | None) -> bool:
    """A web page rather than a feed, by its type and first bytes (no parser: every feed's poll
    asks, and BeautifulSoup is imported only for a page)."""
    ct = (content_type or "").lower()
    head = content[:1024].lstrip().lower()
    if "html" in ct and "xhtml+xml" not in ct:
        return not head.startswith(b"<?xml") or b"<html" in head
    return head.startswith((b"<!doctype html", b"<html")) or (b"<html" in head and b"<rss" not in head and b"<feed" not in head)


def parse_feed(content: bytes, url: str, content_type: str | None = None, *,
               timezone: str | None = None, language: str | None = None) -> ParsedFeed:
    """``monitor.parse.feed.parse_feed``, imported at the first feed to parse (feedparser,
    BeautifulSoup and ftfy are not needed to send a poll)."""
    from monitor.parse.feed import parse_feed as parse

    return parse(content, url, content_type, timezone=timezone, language=language)


async def _feed(fetcher: Fetcher, sc: SourceConfig, resp: FetchResponse, out: SourceFetch) -> SourceFetch:
    if looks_like_html(resp.content, resp.content_type):
        from monitor.sources.listing import feed_links  # BeautifulSoup: only for a web page

        candidates = feed_links(resp.content, resp.final_url)
        if not candidates:
            raise FeedParseError(resp.url, 'a web page, not a feed, and it names no feed (<link rel="alternate">); '
                                           'for a section page use type = "html"')
        feed_url = candidates[0]
        log.info("source %s: %s is a web page; using its feed %s", sc.name, resp.final_url, feed_url)
        resp = await fetcher.get(feed_url, accept=FEED_ACCEPT, allow_private=sc.allow_private_networks)
        out = _base(resp)
        out.new_url, out.new_url_reason = feed_url, f"feed found on {resp.url}"
        if looks_like_html(resp.content, resp.content_type):
            raise FeedParseError(feed_url, "the feed the page names is a web page too")
    feed = await _parse(resp, "feed", functools.partial(parse_feed, resp.content, resp.final_url, resp.content_type,
                                                        timezone=sc.timezone, language=sc.language))
    out.entries = feed.entries
    out.ttl_minutes = feed.ttl_minutes
    out.warnings.extend(feed.warnings)
    return out


async def _parse(resp: FetchResponse, what: str, fn: Callable[[], T]) -> T:
    """Parse off the event loop within the time and depth budget; over budget is the source's
    FeedParseError like any unreadable document."""
    try:
        return await off_loop(fn, document=resp.content, what=what)
    except BudgetExceeded as exc:
        raise FeedParseError(resp.url, str(exc)) from exc


def _recent(entries: list[SitemapEntry], since: datetime) -> tuple[list[SitemapEntry], int]:
    keep = [e for e in entries if e.modified is not None and e.modified >= since]
    undated = sum(1 for e in entries if e.modified is None)
    return keep, undated


async def _sitemap_entries(fetcher: Fetcher, sc: SourceConfig, resp: FetchResponse, window: float,
                           warnings: list[str]) -> list[FeedEntry]:
    from monitor.sources.sitemap import SitemapError, maybe_gunzip, parse_sitemap

    since = datetime.now(UTC) - timedelta(seconds=window)
    limit = fetcher.settings.max_bytes

    async def parse(r: FetchResponse) -> Sitemap:
        try:
            return await _parse(r, "sitemap", lambda: parse_sitemap(maybe_gunzip(r.content, limit)))
        except SitemapError as exc:
            raise FeedParseError(r.url, str(exc)) from exc

    top = await parse(resp)
    urls = list(top.urls)
    undated = 0
    if top.sitemaps:
        # An index: read only the child sitemaps changed within the window (newest first).
        children = sorted((c for c in top.sitemaps if c.modified is None or c.modified >= since),
                          key=lambda c: c.modified or since, reverse=True)[:MAX_CHILD_SITEMAPS]
        for child in children:
            try:
                cresp = await fetcher.get(child.url, accept=SITEMAP_ACCEPT, allow_private=sc.allow_private_networks)
                sub = await parse(cresp)
            except (FetchError, FeedParseError) as exc:
                warnings.append(f"child sitemap skipped: {exc}")
                continue
            urls.extend(sub.urls)
    recent, undated = _recent(urls, since)
    if undated:
        warnings.append(f"{undated} sitemap URLs without a date skipped (only entries from the last "
                        f"{window / 3600:g} h are taken)")
    seen: set[str] = set()
    entries = []
    for e in sorted(recent, key=lambda e: e.modified or since, reverse=True):
        if e.url in seen:
            continue
        seen.add(e.url)
        entries.append(FeedEntry(guid=e.url, url=e.url, title=e.title, content_html="",
                                 published=e.published, language=e.language, updated=e.lastmod))
    return entries


__all__ = ["FEED_ACCEPT", "HTML_ACCEPT", "SourceFetch", "fetch_source", "robots_enabled"]
