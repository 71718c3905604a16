"""A loopback newsroom: the seed article as a news page behind an RSS feed, among unrelated pages."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from tests.harness import email_channel, rule, source, webhook_channel, write_config
from tests.servers import Page, Site

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED = FIXTURES / "seed" / "kazakhstan-good-services.txt"
SEED_PATH = "/news/2025/09/24/kazakhstan-good-services"
RULE = 'Kazakhstan AND (mediator OR "venue for negotiations")'


def seed_article() -> tuple[str, str, list[str]]:
    """(date, headline, paragraphs) of the seed text: the first line holds the date and headline."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    m = re.match(r"\s*date\s+(\d{4}-\d{2}-\d{2})\s+(.*)", lines[0])
    assert m, "seed article's first line changed"
    paras = [ln.strip() for ln in lines[1:] if ln.strip()]
    return m.group(1), m.group(2).strip(), paras


def seed_page() -> bytes:
    date, headline, paras = seed_article()
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(headline)} | Loopback Pravda</title>
<meta property="og:title" content="{html.escape(headline, quote=True)}">
<meta property="article:published_time" content="{date}T10:15:00+03:00">
<meta name="author" content="Loopback Pravda staff">
</head><body>
<header><nav><a href="/">Home</a> <a href="/politics">Politics</a> <a href="/world">World</a></nav></header>
<main><article>
<h1>{html.escape(headline)}</h1>
<time datetime="{date}T10:15:00+03:00">24 September 2025, 10:15</time>
{body}
</article></main>
<footer><p>© Loopback Pravda. All rights reserved.</p><p>Subscribe to our newsletter for daily updates.</p></footer>
</body></html>""".encode()


def unrelated_pages() -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted((FIXTURES / "articles").glob("*.html"))}


def rss(site: Site, items: list[tuple[str, str, datetime]], descriptions: dict[str, str] | None = None) -> bytes:
    """An RSS 2.0 feed; an item's description is its title unless ``descriptions`` has its path."""
    parts = []
    for path, title, when in items:
        desc = (descriptions or {}).get(path, title)
        parts.append(f"""<item><title>{html.escape(title)}</title><link>{site.url(path)}</link>
<guid isPermaLink="false">{html.escape(path)}</guid><pubDate>{format_datetime(when)}</pubDate>
<description>{html.escape(desc)}</description></item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Loopback Pravda</title><link>{site.base}/</link>
<description>News</description>{''.join(parts)}</channel></rss>""".encode()


def publish_newsroom(site: Site) -> list[str]:
    """Serve the feed at /feed.xml; return the article paths in feed order."""
    date, headline, _ = seed_article()
    items = [(SEED_PATH, headline, datetime(2025, 9, 24, 7, 15, tzinfo=UTC))]
    site.pages[SEED_PATH] = Page(seed_page())
    for i, (stem, body) in enumerate(unrelated_pages().items()):
        path = f"/news/other-{stem[:8]}"
        site.pages[path] = Page(body)
        title = re.search(rb"<title[^>]*>(.*?)</title>", body, re.S | re.I)
        items.append((path, html.unescape(title.group(1).decode("utf-8", "replace")).strip() if title else stem,
                      datetime(2025, 9, 23, 12, i, tzinfo=UTC)))
    site.pages["/feed.xml"] = Page(rss(site, items), "application/rss+xml; charset=utf-8")
    return [p for p, _, _ in items]


def newsroom_config(path: Path, database_url: str, site: Site, smtp_port: int, hook_url: str, *more: str,
                    monitor: str = "", tables: str = "", fetch: str = "") -> Path:
    """The newsroom's feed, the seed rule, an email and a webhook channel, then ``more`` blocks."""
    return write_config(path, database_url, source("Loopback Pravda", site.url("/feed.xml")),
                        rule("kz-mediation", RULE, ["mail", "hook"]),
                        email_channel("mail", smtp_port), webhook_channel("hook", hook_url), *more,
                        monitor=monitor, tables=tables, fetch=fetch)
