"""One hostile feed never aborts a ``run --once`` cycle nor loops in the daemon: odd IP
spellings in links, invalid character references, NUL and lone surrogates, feeds with more
entries than the database takes parameters, and any other failure inside one source's poll
become that source's error (with backoff and notices) or drop only the bad entry."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from monitor.config import load_config
from monitor.parse import FeedEntry
from monitor.pipeline import Pipeline
from monitor.store.db import create_db_engine, session_scope, upgrade
from monitor.store.models import Source
from tests.fetch_helpers import articles, make_due, run_once, source_row
from tests.harness import source, webhook_channel, write_config
from tests.newsroom import rss
from tests.servers import Page, Site

NOW = datetime(2025, 9, 24, 8, 0, tzinfo=UTC)


def _raw_rss(items: list[tuple[str, str]]) -> bytes:
    """Items written verbatim (title markup, link) so hostile bytes reach the parser as sent."""
    body = "".join(f"<item><title>{t}</title><link>{link}</link><description>{t} body</description>"
                   f"<pubDate>Wed, 24 Sep 2025 07:00:00 GMT</pubDate></item>" for t, link in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>x</title>'
            f"<link>http://example.org/</link>{body}</channel></rss>").encode("utf-8", "surrogatepass")


def test_hostile_feeds_stay_their_own_sources_problem(tmp_path: Path, site: Site, database_url: str) -> None:
    site.pages["/good.xml"] = Page(rss(site, [("/g1", "Good one", NOW), ("/g2", "Good two", NOW)]),
                                   "application/rss+xml")
    port = site.port
    site.pages["/oddip.xml"] = Page(_raw_rss([("Odd one", f"http://127.000.000.001:{port}/a"),
                                              ("Odd two", f"http://0177.0.0.1:{port}/b"),
                                              ("Odd three", f"http://[::1:{port}/c")]), "application/rss+xml")
    site.pages["/charref.xml"] = Page(_raw_rss([("Lone &#xD800; surrogate", "http://example.org/s1"),
                                                ("NUL &#0; reference", "http://example.org/s2")]),
                                      "application/rss+xml")
    site.pages["/nul.xml"] = Page(_raw_rss([("Raw \x00 NUL", "http://example.org/n1"),
                                            ("After the NUL", "http://example.org/n2")]), "application/rss+xml")
    site.pages["/feed.json"] = Page(json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "j",
        "items": [{"id": "j1", "url": "http://example.org/j1", "title": "JSON \ud800 and \u0000 title",
                   "content_text": "body \udfff"},
                  {"id": "j2", "url": "http://example.org/j2", "title": "JSON fine"}]}).encode(),
        "application/feed+json")
    site.pages["/moved.xml"] = Page(b"", "text/plain", 302, {"Location": f"http://0177.0.0.1:{port}/feed.xml"})
    srcs = (source("Good", site.url("/good.xml"), full_text=False)
            + source("Redirect", site.url("/moved.xml"))
            + source("OddIP", site.url("/oddip.xml"))
            + source("Charref", site.url("/charref.xml"), full_text=False)
            + source("Nul", site.url("/nul.xml"), full_text=False)
            + source("Json", site.url("/feed.json"), full_text=False))
    cfg = write_config(tmp_path / "config.toml", database_url, srcs)
    reports = {r.source: r for r in asyncio.run(run_once(cfg))}
    redirect = reports.pop("Redirect")
    assert redirect.status == "error" and "0177.0.0.1" in (redirect.error or ""), redirect
    assert all(r.status == "ok" for r in reports.values()), reports
    stored = {a.title: a for a in articles(cfg)}
    assert {"Good one", "Good two"} <= set(stored)
    # The odd links were refused as links, each entry kept with the feed's own content; a link
    # no URL parser reads drops only its own entry.
    for title in ("Odd one", "Odd two"):
        assert "invalid URL: Invalid IPv4 address" in (stored[title].fetch_error or ""), stored[title].fetch_error
    assert "Odd three" not in stored
    assert any("entry 2: skipped" in w for w in reports["OddIP"].warnings), reports["OddIP"].warnings
    assert {"Lone \ufffd surrogate", "NUL \ufffd reference", "Raw NUL", "After the NUL",
            "JSON \ufffd and  title", "JSON fine"} <= set(stored), sorted(stored)
    assert stored["JSON \ufffd and  title"].text == "body \ufffd"


def test_any_failure_inside_a_poll_is_that_sources_error_with_backoff(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.pages["/good.xml"] = Page(rss(site, [("/g1", "Good one", NOW)]), "application/rss+xml")
    site.pages["/bad.xml"] = Page(rss(site, [("/b1", "Bad one", NOW)]), "application/rss+xml")
    import monitor.sources.poll as sources_mod

    real = sources_mod.parse_feed

    def fragile(content: bytes, url: str, *args: object, **kw: object) -> object:
        if url.endswith("/bad.xml"):
            raise RecursionError("maximum recursion depth exceeded")  # what a library may do
        return real(content, url, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sources_mod, "parse_feed", fragile)
    db = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = write_config(tmp_path / "config.toml", db, source("Good", site.url("/good.xml"), full_text=False),
                       source("Bad", site.url("/bad.xml"), full_text=False),
                       webhook_channel("ops", "http://127.0.0.1:9/x"),
                       fetch="broken_after = 2", monitor='source_errors_to = "ops"')
    reports = {r.source: r for r in asyncio.run(run_once(cfg))}
    assert reports["Good"].status == "ok" and reports["Good"].new_articles == 1
    assert reports["Bad"].status == "error" and "RecursionError" in (reports["Bad"].error or "")
    row = source_row(cfg, "Bad")
    assert row.consecutive_failures == 1 and "RecursionError" in (row.last_error or "")
    assert row.next_poll_at is not None and row.next_poll_at.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(seconds=5)
    # Not polled again before its backoff ends; polled when due, and reported broken.
    asyncio.run(run_once(cfg))
    assert source_row(cfg, "Bad").consecutive_failures == 1
    make_due(cfg, "Bad")
    asyncio.run(run_once(cfg))
    row = source_row(cfg, "Bad")
    assert row.consecutive_failures == 2 and row.broken_since is not None


def test_entry_lists_beyond_the_parameter_limit_are_looked_up_in_batches(database_url: str, tmp_path: Path) -> None:
    # 2 parameters an entry in one query: past PostgreSQL's 65,535 at 40,000 entries, past the
    # 250,000 of the SQLite Debian builds (32,766 upstream) at 130,000.
    cfg = load_config(write_config(tmp_path / "config.toml", database_url, source("Big", "http://127.0.0.1:9/feed.xml")))
    engine = create_db_engine(cfg.database_url)
    upgrade(engine)
    pipeline = Pipeline(cfg, engine)
    try:
        pipeline.sync_sources()
        with session_scope(engine) as s:
            sid = s.exec(select(Source.id).where(Source.name == "Big")).one()
        n = 130_000 if database_url.startswith("sqlite") else 40_000
        entries = [FeedEntry(guid=f"g{i}", url=f"http://example.org/{i}", title=f"t{i}", content_html="",
                             published=None) for i in range(n)]
        assert sid is not None
        found = pipeline._lookup(sid, entries)
        assert len(found.new) == n
    finally:
        asyncio.run(pipeline.aclose())
        engine.dispose()


def test_an_over_long_guid_or_link_is_stored_once_on_both_databases(tmp_path: Path, site: Site,
                                                                    database_url: str) -> None:
    """GUIDs and links are unique keys of the article table, and PostgreSQL's B-tree index refuses
    an entry over ~2.7 KB that does not compress: a 10 KB random GUID, or link, was "not stored"
    there (ProgramLimitExceeded) and lost, while SQLite took it. Past 1,000 / 2,048 bytes they are
    stored as a digest:
    every entry is stored on both databases, a second poll finds them seen, and the long link is
    kept as the entry's original URL (its page is not fetched: the feed's text is stored)."""
    import secrets

    long_guid = secrets.token_hex(5000)  # random: PostgreSQL compresses a repeated one under its limit
    long_link = "http://example.org/" + secrets.token_hex(5000)
    items = (f"<item><title>guid</title><link>http://example.org/a</link><guid isPermaLink='false'>{long_guid}</guid>"
             "<description>first body</description></item>"
             f"<item><title>link</title><link>{long_link}</link><description>second body</description></item>"
             "<item><title>plain</title><link>http://example.org/c</link><description>third body</description></item>")
    site.pages["/feed.xml"] = Page(f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
                                   f"<link>http://example.org/</link>{items}</channel></rss>".encode(),
                                   "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", database_url, source("Feed", site.url("/feed.xml"), full_text=False))
    [report] = asyncio.run(run_once(cfg))
    assert (report.status, report.new_articles, report.warnings) == ("ok", 3, []), report
    stored = {a.title: a for a in articles(cfg)}
    assert stored["guid"].url == "http://example.org/a" and stored["guid"].guid.startswith("sha256:")
    assert stored["link"].url.startswith("urn:monitor:link:") and stored["link"].original_url == long_link
    assert stored["link"].text == "second body"
    [again] = asyncio.run(run_once(cfg, everything=True))
    assert (again.status, again.new_articles) == ("ok", 0), again
    assert len(articles(cfg)) == 3


def _live_blog(updates: int) -> bytes:
    """A live page of many short updates: trafilatura's pruning is superlinear in sibling blocks
    (20,000 updates, 3 MB: ~9 s of CPU to extract on the machine this was written on)."""
    return ("<html><head><title>Live: the talks</title></head><body><article>" + "".join(
        f"<div class='update'><h3>{i:05d}</h3><p>Update {i}: the delegations met again in the capital "
        f"and discussed the border crossings, officials said.</p></div>" for i in range(updates))
        + "</article></body></html>").encode()


def test_a_page_past_its_cpu_limit_is_stored_with_the_feeds_text(tmp_path: Path, site: Site, database_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A page whose extraction runs past ``PAGE_CPU_LIMIT`` (a minute; a second here) is given up:
    its article is stored with the feed's text and says why, the worker goes on with the other
    pages, which are stored with their own text."""
    from monitor.extract import pool as extract_pool
    from tests.newsroom import unrelated_pages

    monkeypatch.setattr(extract_pool, "PAGE_CPU_LIMIT", 1.0)
    monkeypatch.setattr(extract_pool, "PAGE_CPU_KILL", 5.0)
    items = [("/live", "Live: the talks", NOW)]
    site.pages["/live"] = Page(_live_blog(20_000))
    for i, body in enumerate(unrelated_pages().values()):
        site.pages[f"/a/{i}"] = Page(body)
        items.append((f"/a/{i}", f"Story {i}", NOW - timedelta(minutes=i + 1)))
    site.pages["/feed.xml"] = Page(rss(site, items), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", database_url, source("News", site.url("/feed.xml")),
                       tables="[dedup]\nevents = false\n")
    try:
        [report] = asyncio.run(run_once(cfg))
    finally:
        extract_pool.shutdown()
    assert report.status == "ok" and report.new_articles == len(items), report
    stored = {a.title: a for a in articles(cfg)}
    live = stored.pop("Live: the talks")
    assert not live.full_text and live.text == "Live: the talks"  # the feed's description
    assert live.fetch_error == "extraction failed: extraction took more than 1 s of CPU and was given up"
    assert stored and all(a.full_text and a.fetch_error is None and len(a.text) > 500 for a in stored.values())
