"""Parse RSS 0.9x/1.0/2.0, Atom and JSON Feed with feedparser, always from bytes.

feedparser is never handed a URL or a path: it would fetch or open it itself, bypassing our
fetcher's limits and politeness.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
from bs4 import BeautifulSoup


class FeedParseError(Exception):
    def __init__(self, url: str, message: str):
        super().__init__(f"{url}: {message}")
        self.url = url


@dataclass(frozen=True)
class FeedEntry:
    guid: str
    url: str
    title: str
    content_html: str  # the richest body the feed carries (content, else summary)
    published: datetime | None
    author: str | None = None
    language: str | None = None

    @property
    def content_text(self) -> str:
        return html_to_text(self.content_html)


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    link: str | None
    entries: list[FeedEntry]
    ttl_minutes: int | None = None
    language: str | None = None
    warnings: list[str] = field(default_factory=list)


def html_to_text(html: str) -> str:
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return html.strip()
    soup = BeautifulSoup(html, "html.parser")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    blocks = []
    for el in soup.find_all(["p", "li", "h1", "h2", "h3", "h4", "blockquote"]):
        el.insert_after("\n\n")
    text = soup.get_text()
    for para in text.split("\n\n"):
        p = " ".join(para.split())
        if p:
            blocks.append(p)
    return "\n\n".join(blocks)


def _date(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        t = entry.get(key)
        if t:
            return datetime.fromtimestamp(calendar.timegm(t), UTC)
    return None


def parse_feed(content: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse feed bytes; recover what feedparser can, raise FeedParseError when nothing is usable."""
    headers = {"content-type": content_type} if content_type else {}
    d = feedparser.parse(content, response_headers=headers, sanitize_html=False, resolve_relative_uris=True)
    warnings: list[str] = []
    if d.get("bozo"):
        warnings.append(f"malformed feed, recovered: {d.get('bozo_exception')}")
    if not d.entries and not d.feed and d.get("bozo"):
        raise FeedParseError(url, f"not a feed: {d.get('bozo_exception')}")
    base = d.feed.get("link") or url
    entries: list[FeedEntry] = []
    for i, e in enumerate(d.entries):
        try:
            link = e.get("link") or ""
            link = urljoin(url, link) if link else ""
            guid = e.get("id") or link or e.get("title") or f"{url}#{i}"
            contents = e.get("content") or []
            body = max((c.get("value", "") for c in contents), key=len, default="") or e.get("summary", "")
            title = html_to_text(e.get("title", "")).replace("\n", " ").strip()
            entries.append(FeedEntry(guid=str(guid), url=link or base, title=title, content_html=body,
                                     published=_date(e), author=e.get("author") or None,
                                     language=(e.get("language") or d.feed.get("language") or None)))
        except Exception as exc:  # one bad entry never drops the rest of the feed
            warnings.append(f"entry {i}: skipped: {exc}")
    ttl = d.feed.get("ttl")
    try:
        ttl_minutes = int(ttl) if ttl else None
    except (TypeError, ValueError):
        ttl_minutes = None
    return ParsedFeed(title=d.feed.get("title", ""), link=d.feed.get("link"), entries=entries,
                      ttl_minutes=ttl_minutes, language=d.feed.get("language"), warnings=warnings)
