"""A feed that gives one GUID to distinct items (a common CMS bug: every <guid> the site's home
page) loses none of them: items with distinct links are distinct articles, stored once however
often the feed is polled; an exact repeat is one article (real server, both databases)."""

from __future__ import annotations

import asyncio
import html
import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.parse.entry import FeedEntry
from monitor.pipeline import Pipeline
from monitor.store.db import create_db_engine, upgrade
from tests.fetch_helpers import articles, run_once
from tests.harness import run_monitor, source, write_config
from tests.servers import Page, Site

NOW = datetime.now(UTC).replace(microsecond=0)
NO_EVENTS = "[dedup]\nevents = false\n"  # no sentence model to load: these stories need none


def _feed(site: Site, items: list[tuple[str, str]], guid: str) -> Page:
    """An RSS feed whose items (path, title) all carry ``guid``."""
    parts = [f"""<item><title>{html.escape(title)}</title><link>{site.url(path)}</link>
<guid>{html.escape(guid)}</guid><pubDate>{format_datetime(NOW - timedelta(minutes=i))}</pubDate>
<description>{html.escape(title)}: the report in full.</description></item>""" for i, (path, title) in enumerate(items)]
    body = f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Dup</title>
<link>{site.base}/</link><description>News</description>{''.join(parts)}</channel></rss>"""
    return Page(body.encode(), "application/rss+xml")


ITEMS = [("/page/dg1.html", "Parliament passes the budget"), ("/page/dg2.html", "Storm closes the port"),
         ("/page/dg3.html", "Cup final goes to penalties")]


def test_items_sharing_a_guid_are_each_stored_once(tmp_path: Path, database_url: str, site: Site) -> None:
    guid = site.url("/")
    # the third item twice, exactly: one article
    site.pages["/feed.xml"] = _feed(site, [*ITEMS, ITEMS[2]], guid)
    cfg = write_config(tmp_path / "config.toml", database_url, source("dupguid", site.url("/feed.xml"),
                                                                      full_text=False), tables=NO_EVENTS)
    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 0, res.stderr
    assert "already stored" not in res.stderr and "not stored" not in res.stderr
    assert "4 entries, 3 new articles" in res.stderr
    assert "share a GUID with entries of other links" in res.stderr  # said, and kept for `monitor sources`
    arts = json.loads(run_monitor(cfg, "articles", "--json").stdout)
    assert sorted(a["url"] for a in arts) == sorted(site.url(p) for p, _ in ITEMS)
    assert sorted(a["title"] for a in arts) == sorted(t for _, t in ITEMS)
    stored = articles(cfg)
    assert len({a.guid for a in stored}) == 3 and all(a.guid.startswith(guid + " ") for a in stored)

    # polled again: nothing stored twice, nothing said to clash
    res = run_monitor(cfg, "run", "--once", "--all")
    assert res.returncode == 0, res.stderr
    assert "4 entries, 0 new articles" in res.stderr and "not stored" not in res.stderr
    assert len(articles(cfg)) == 3


def test_a_guid_shared_later_or_no_longer(tmp_path: Path, database_url: str, site: Site) -> None:
    """The feed's GUID was one item's alone, then several items share it, then one of them stands
    alone again (the others scrolled off): each item is stored once, and the one left, when its
    entry changes, updates its own article, not the first item's that holds the plain GUID."""
    guid = "urn:cms:item"
    cfg = write_config(tmp_path / "config.toml", database_url, source("dupguid", site.url("/feed.xml"),
                                                                      full_text=False), tables=NO_EVENTS)
    site.pages["/feed.xml"] = _feed(site, ITEMS[:1], guid)
    [first] = asyncio.run(run_once(cfg, everything=True))
    assert first.new_articles == 1 and [a.guid for a in articles(cfg)] == [guid]

    site.pages["/feed.xml"] = _feed(site, ITEMS, guid)
    [second] = asyncio.run(run_once(cfg, everything=True))
    assert (second.entries, second.new_articles) == (3, 2)
    assert [a.original_url for a in articles(cfg)] == [site.url(p) for p, _ in ITEMS]

    site.pages["/feed.xml"] = _feed(site, [(ITEMS[2][0], "Cup final goes to penalties after extra time")], guid)
    [third] = asyncio.run(run_once(cfg, everything=True))
    assert (third.new_articles, third.updated_articles) == (0, 1)
    assert [a.title for a in articles(cfg)] == [ITEMS[0][1], ITEMS[1][1], "Cup final goes to penalties after extra time"]


def test_a_refused_insert_says_which_key_clashed(tmp_path: Path, database_url: str, site: Site,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """An entry the database refuses as stored already (a race with another instance: the lookup
    lets none through otherwise) is logged with what clashed: its GUID, and the article that
    holds it, or its link. The log used to blame the link for a shared GUID."""
    site.pages["/feed.xml"] = _feed(site, ITEMS[:1], "urn:cms:item")
    cfg = write_config(tmp_path / "config.toml", database_url, source("dupguid", site.url("/feed.xml"),
                                                                      full_text=False), tables=NO_EVENTS)
    asyncio.run(run_once(cfg))
    [stored] = articles(cfg)
    config = load_config(cfg)
    engine = create_db_engine(config.database_url)
    upgrade(engine)
    pipeline = Pipeline(config, engine)
    try:
        sc = config.sources[0]
        same_guid = FeedEntry(guid="urn:cms:item", url=site.url("/page/other.html"), title="Another report",
                              content_html="<p>Another report.</p>", published=NOW)
        same_link = FeedEntry(guid="urn:cms:other", url=site.url(ITEMS[0][0]), title="Again",
                              content_html="<p>Again.</p>", published=NOW)
        with caplog.at_level(logging.INFO, logger="monitor.pipeline"):
            assert stored.source_id is not None
            assert pipeline._ingest(stored.source_id, sc, same_guid, None, None) is None
            assert pipeline._ingest(stored.source_id, sc, same_link, None, None) is None
    finally:
        asyncio.run(pipeline.aclose())
        engine.dispose()
    said = [r.getMessage() for r in caplog.records if "not stored again" in r.getMessage()]
    assert said == [
        f"source dupguid: article {site.url('/page/other.html')} not stored again: its GUID 'urn:cms:item' is "
        f"stored already, for article {stored.id} ({stored.url})",
        f"source dupguid: article {stored.url} not stored again: its link is stored already (article {stored.id})",
    ]
    assert len(articles(cfg)) == 1
