"""What kind of source a URL is (``monitor add-source``) and a feed reader's OPML export
(``monitor import-opml``), both turned into ``[[source]]`` config entries."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from monitor.fetch import Fetcher, FetchError
from monitor.parse import FeedParseError, parse_feed
from monitor.sources.listing import article_links, feed_links
from monitor.sources.poll import looks_like_html
from monitor.sources.sitemap import SitemapError, maybe_gunzip, parse_sitemap

ACCEPT = "application/rss+xml, application/atom+xml, application/feed+json, text/html;q=0.9, */*;q=0.8"


@dataclass
class SourceEntry:
    """One ``[[source]]`` entry to print."""

    name: str
    url: str
    type: str = "feed"
    interval: str = "5m"
    comments: list[str] = field(default_factory=list)

    def toml(self) -> str:
        lines = [f"# {c}" for c in self.comments]
        lines += ["[[source]]", f"name = {_q(self.name)}", f"url = {_q(self.url)}"]
        if self.type != "feed":
            lines.append(f"type = {_q(self.type)}")
        lines.append(f"interval = {_q(self.interval)}")
        return "\n".join(lines) + "\n"


def _q(s: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(s, ensure_ascii=False)


def _title(html: bytes) -> str:
    m = re.search(rb"<title[^>]*>(.*?)</title>", html, re.S | re.I)
    if not m:
        return ""
    import html as html_mod

    return " ".join(html_mod.unescape(m.group(1).decode("utf-8", "replace")).split())


async def describe(fetcher: Fetcher, url: str, allow_private: bool | None = None) -> SourceEntry:
    """Fetch ``url`` and say how to watch it: its feed, the page as a listing, or a sitemap.

    Raises FetchError or ValueError (nothing usable at that address).
    """
    resp = await fetcher.get(url, accept=ACCEPT, allow_private=allow_private)
    if looks_like_html(resp.content, resp.content_type):
        page_title = _title(resp.content)
        for feed_url in feed_links(resp.content, resp.final_url)[:3]:
            try:
                fresp = await fetcher.get(feed_url, accept=ACCEPT, allow_private=allow_private)
                feed = parse_feed(fresp.content, fresp.final_url, fresp.content_type)
            except (FetchError, FeedParseError):
                continue
            return SourceEntry(name=feed.title or page_title or feed_url, url=fresp.final_url,
                               comments=[f"feed found on {resp.final_url} ({len(feed.entries)} entries)"])
        links = article_links(resp.content, resp.final_url)
        entry = SourceEntry(name=page_title or resp.final_url, url=resp.final_url, type="html")
        if links:
            entry.comments.append(f"no feed announced; {len(links)} article links found on the page, e.g. {links[0].url}")
        else:
            entry.comments.append('no feed and no article links found: add links = "css selector" for the article links')
        return entry
    try:
        sm = parse_sitemap(maybe_gunzip(resp.content, fetcher.settings.max_bytes))
        kind = "sitemap index" if sm.is_index else "sitemap"
        return SourceEntry(name=resp.final_url, url=resp.final_url, type="sitemap",
                           comments=[f"{kind} with {len(sm.sitemaps) or len(sm.urls)} entries"])
    except SitemapError:
        pass
    try:
        feed = parse_feed(resp.content, resp.final_url, resp.content_type)
    except FeedParseError as exc:
        raise ValueError(f"{url}: neither a feed, a web page nor a sitemap ({exc})") from exc
    return SourceEntry(name=feed.title or resp.final_url, url=resp.final_url,
                       comments=[f"feed with {len(feed.entries)} entries"])


def opml_entries(content: bytes) -> list[SourceEntry]:
    """Feed subscriptions in an OPML file, with their folder as a comment, each URL once."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise ValueError(f"not an OPML file: {exc}") from exc
    if root.tag.lower() != "opml":
        raise ValueError(f"not an OPML file: root element <{root.tag}>")
    body = root.find("body")
    out: list[SourceEntry] = []
    seen: set[str] = set()

    def walk(node: ET.Element, folder: list[str]) -> None:
        for o in node.findall("outline"):
            attrs = {k.lower(): v for k, v in o.attrib.items()}
            title = (attrs.get("title") or attrs.get("text") or "").strip()
            url = (attrs.get("xmlurl") or "").strip()
            if url:
                if url not in seen and re.match(r"^https?://", url):
                    seen.add(url)
                    e = SourceEntry(name=title or url, url=url)
                    if folder:
                        e.comments.append("folder: " + " / ".join(folder))
                    out.append(e)
            else:
                walk(o, [*folder, title] if title else folder)

    walk(body if body is not None else root, [])
    return out


def unique_names(entries: list[SourceEntry], taken: set[str]) -> list[SourceEntry]:
    """Source names must be unique in a config: "Name", "Name (2)", ..."""
    used = set(taken)
    for e in entries:
        base, n = e.name, 2
        while e.name in used:
            e.name = f"{base} ({n})"
            n += 1
        used.add(e.name)
    return entries
