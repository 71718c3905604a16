"""Sitemaps: urlsets, sitemap indexes and Google News sitemaps.

Parsed with the standard library's expat-based ElementTree (thread-safe, protected against
entity expansion bombs), never lxml: see monitor.sources.listing.
"""

from __future__ import annotations

import gzip
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime

from monitor.parse.dates import plausible
from monitor.util import aware

_W3C_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?")


class SitemapError(Exception):
    pass


@dataclass(frozen=True)
class SitemapEntry:
    url: str
    modified: datetime | None = None  # news:publication_date, else lastmod: for the window
    published: datetime | None = None  # news:publication_date only (lastmod is not a pub date)
    title: str = ""
    language: str | None = None
    lastmod: str | None = None  # as written: a change of it is a change of the page (``FeedEntry.updated``)


@dataclass
class Sitemap:
    urls: list[SitemapEntry] = field(default_factory=list)
    sitemaps: list[SitemapEntry] = field(default_factory=list)  # children of an index

    @property
    def is_index(self) -> bool:
        return bool(self.sitemaps) and not self.urls


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def parse_w3c_date(value: str | None) -> datetime | None:
    """W3C datetime as sitemaps use it: 2025-09-24, 2025-09-24T10:15:00+03:00, ...Z."""
    if not value:
        return None
    v = value.strip()
    if not _W3C_DATE.match(v):
        return None
    if v.endswith(("Z", "z")):
        v = v[:-1] + "+00:00"
    if len(v) == 4:
        v += "-01-01"
    elif len(v) == 7:
        v += "-01"
    try:
        dt = aware(datetime.fromisoformat(v))
    except ValueError:
        return None
    return dt if plausible(dt) else None  # 9999-12-31, 0001-01-01: no date (see dates.plausible)


def maybe_gunzip(content: bytes, limit: int) -> bytes:
    """``sitemap.xml.gz`` served as raw gzip: decompress, stopping at ``limit`` decoded bytes."""
    if not content.startswith(b"\x1f\x8b"):
        return content
    with gzip.GzipFile(fileobj=io.BytesIO(content)) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SitemapError(f"sitemap larger than {limit} bytes once decompressed")
    return data


def parse_sitemap(content: bytes) -> Sitemap:
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise SitemapError(f"not a sitemap (XML error: {exc})") from exc
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise SitemapError(f"not a sitemap: root element <{kind}>")
    out = Sitemap()
    for item in root:
        name = _local(item.tag)
        if name not in ("url", "sitemap"):
            continue
        loc = lastmod = pubdate = title = lang = None
        for child in item.iter():
            cname = _local(child.tag)
            text = (child.text or "").strip()
            if cname == "loc" and loc is None:
                loc = text
            elif cname == "lastmod":
                lastmod = text
            elif cname == "publication_date":
                pubdate = text
            elif cname == "title" and title is None:
                title = text
            elif cname == "language":
                lang = text
        if not loc:
            continue
        published = parse_w3c_date(pubdate)
        entry = SitemapEntry(url=loc, modified=published or parse_w3c_date(lastmod), published=published,
                             title=title or "", language=lang or None, lastmod=lastmod or None)
        (out.sitemaps if name == "sitemap" else out.urls).append(entry)
    return out
