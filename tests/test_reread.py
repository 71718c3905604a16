"""Updated articles: a stored article whose feed entry changed is read again, and a statement
added to a developing story alerts (README "Updated articles")."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.parse import FeedEntry
from monitor.parse.feed import parse_feed
from tests.fetch_helpers import articles, requests_to, run_once
from tests.harness import rule, run_monitor, source, webhook_channel, write_config
from tests.newsroom import RULE, seed_article
from tests.servers import Page, Request, Site

PATH = "/news/tokayev-on-the-war"
HEADLINE = "Tokayev speaks on the war in Ukraine"


def _page(paras: list[str], published: datetime) -> bytes:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{HEADLINE}</title>
<meta property="article:published_time" content="{published.isoformat()}"></head>
<body><main><article><h1>{HEADLINE}</h1>{body}</article></main></body></html>""".encode()


def _atom(site: Site, summary: str, published: datetime, updated: datetime) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Loopback Wire</title><id>urn:wire</id>
<updated>{updated.isoformat()}</updated>
<entry><title>{HEADLINE}</title><id>urn:wire:tokayev</id><link href="{site.url(PATH)}"/>
<published>{published.isoformat()}</published><updated>{updated.isoformat()}</updated>
<summary>{html.escape(summary)}</summary></entry></feed>""".encode()


def _story() -> tuple[list[str], list[str]]:
    """The seed article's paragraphs without its statement (what the first version said), and
    with it."""
    _, _, paras = seed_article()
    body = [p for p in paras[1:] if "(Photo" not in p]
    first = [p for p in body if "mediator" not in p and "venue for" not in p and "place for negotiations" not in p]
    assert len(first) < len(body)
    return first, body


def _config(tmp_path: Path, database_url: str, site: Site, hook: Site, **rule_extra: object) -> Path:
    return write_config(tmp_path / "config.toml", database_url, source("Wire", site.url("/atom.xml")),
                        rule("kz-mediation", RULE, ["hook"], **rule_extra), webhook_channel("hook", hook.url("/hook")))


def test_a_statement_added_to_a_published_article_alerts(tmp_path: Path, database_url: str, site: Site,
                                                         webhook: Site) -> None:
    """The wire publishes the article without the president's statement; minutes later it adds
    it and the feed's entry says it was updated. The next poll reads the page again: the
    statement is quoted in an alert, the article holds it (one article, not two), and a poll
    that finds the entry unchanged does not fetch the page again."""
    first, full = _story()
    now = datetime.now(UTC).replace(microsecond=0)
    published = now - timedelta(hours=1)
    site.pages[PATH] = Page(_page(first, published))
    site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", published, published), "application/atom+xml")
    cfg = _config(tmp_path, database_url, site, webhook)

    [report] = asyncio.run(run_once(cfg, everything=True))
    assert (report.new_articles, report.alerts, report.updated_articles) == (1, 0, 0), report
    assert webhook.posts("/hook") == []

    site.pages[PATH] = Page(_page(full, published))
    site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", published, now), "application/atom+xml")
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert (report.new_articles, report.alerts, report.updated_articles) == (0, 1, 1), report
    [hook] = webhook.post_json("/hook")
    assert any("Kazakhstan is not a mediator" in s["text"] for s in hook["statements"]), hook["statements"]
    [art] = articles(cfg)
    assert "not a mediator" in art.text and art.reread_count == 1
    assert hook["url"] == art.url
    assert hook["updated"] is not None  # the alert says the article was updated (templates: "updated ...")

    fetched = requests_to(site, PATH)
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert (report.new_articles, report.alerts, report.updated_articles) == (0, 0, 0), report
    assert requests_to(site, PATH) == fetched  # the entry did not change: its page is not fetched
    assert len(webhook.posts("/hook")) == 1


def test_an_update_that_says_nothing_new_does_not_alert_again(tmp_path: Path, database_url: str, site: Site,
                                                              webhook: Site) -> None:
    """The article alerted; its update adds a paragraph that matches nothing new: no second
    alert. With ``realert = "new_statement"``, an update adding another matching statement
    alerts once more, quoting only that statement."""
    _, full = _story()
    now = datetime.now(UTC).replace(microsecond=0)
    published = now - timedelta(hours=1)
    site.pages[PATH] = Page(_page(full, published))
    site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", published, published), "application/atom+xml")
    cfg = _config(tmp_path, database_url, site, webhook, realert="new_statement")
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert report.alerts == 1

    weather = "Snow fell in Astana on the day of the interview, closing the airport for three hours."
    site.pages[PATH] = Page(_page([*full, weather], published))
    site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", published, published + timedelta(minutes=5)),
                                   "application/atom+xml")
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert (report.updated_articles, report.alerts) == (1, 0), report
    assert "Snow fell in Astana" in articles(cfg)[0].text

    # read again REREAD_GAP after the last reading: here, as if that time had passed
    _age_last_reading(cfg)
    later = ("Tokayev added on Friday that Kazakhstan could act as a mediator for the grain corridor talks "
             "if both governments asked it to.")
    site.pages[PATH] = Page(_page([*full, weather, later], published))
    site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", published, published + timedelta(minutes=20)),
                                   "application/atom+xml")
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert (report.updated_articles, report.alerts) == (1, 1), report
    first, second = webhook.post_json("/hook")
    assert [s["text"] for s in second["statements"]] == [later], second["statements"]
    assert first["updated"] is None and second["updated"] is not None


def test_an_entry_rewritten_at_every_poll_costs_a_few_fetches(tmp_path: Path, site: Site, webhook: Site,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed whose entry changes at every request (a view counter in its summary): the page
    is read again at most ``MAX_REREADS`` times, at most once per ``REREAD_GAP``."""
    from monitor import pipeline

    first, _ = _story()
    now = datetime.now(UTC).replace(microsecond=0)
    site.pages[PATH] = Page(_page(first, now))
    views = iter(range(1000, 100000, 37))

    def counter(_: Request) -> Page:
        return Page(_atom(site, f"Tokayev on the war. {next(views)} readers", now, now), "application/atom+xml")

    feed: Callable[[Request], Page] = counter
    site.pages["/atom.xml"] = feed
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", site, webhook)
    for _ in range(3):
        asyncio.run(run_once(cfg, everything=True))
    assert requests_to(site, PATH) == 2  # stored, then read again once: the next poll was within the gap

    monkeypatch.setattr(pipeline, "REREAD_GAP", 0.0)
    for _ in range(pipeline.MAX_REREADS + 3):
        asyncio.run(run_once(cfg, everything=True))
    assert requests_to(site, PATH) == 1 + pipeline.MAX_REREADS
    assert articles(cfg)[0].reread_count == pipeline.MAX_REREADS


def test_a_feed_that_restamps_every_entry_at_every_request_is_not_read_again(tmp_path: Path, site: Site,
                                                                             webhook: Site) -> None:
    """Some feeds stamp every entry's <updated> with the time of the request: every stored
    entry changes at once, at every poll. That is not news: no page is fetched again (it
    would cost ``MAX_REREADS`` fetches per article), and the poll says why."""
    from monitor.pipeline import REWRITTEN

    first, _ = _story()
    now = datetime.now(UTC).replace(microsecond=0)
    paths = [f"/news/item-{k}" for k in range(REWRITTEN + 1)]
    for path in paths:
        site.pages[path] = Page(_page(first, now))
    stamps = iter(range(10_000))

    def restamped(_: Request) -> Page:
        stamp = (now + timedelta(seconds=next(stamps))).isoformat()
        entries = "".join(f"""<entry><title>Item {k}</title><id>urn:wire:{k}</id><link href="{site.url(path)}"/>
<published>{now.isoformat()}</published><updated>{stamp}</updated><summary>Item {k}.</summary></entry>"""
                          for k, path in enumerate(paths))
        return Page(f"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>Wire</title><id>urn:wire</id><updated>{stamp}</updated>{entries}</feed>""".encode(), "application/atom+xml")

    feed: Callable[[Request], Page] = restamped
    site.pages["/atom.xml"] = feed
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", site, webhook)
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert report.new_articles == len(paths)
    for _ in range(2):
        [report] = asyncio.run(run_once(cfg, everything=True))
        assert report.updated_articles == 0, report
        assert any(f"all {len(paths)} stored entries changed at once" in w for w in report.warnings), report.warnings
    assert [requests_to(site, path) for path in paths] == [1] * len(paths)
    assert all(a.reread_count == 0 for a in articles(cfg))


def test_old_articles_and_a_config_that_says_no_are_not_read_again(tmp_path: Path, site: Site,
                                                                  webhook: Site) -> None:
    """An article past ``alert_max_age`` could not alert: its changed entry is not fetched
    again; nor any with ``[fetch] reread_updates = false``."""
    first, full = _story()
    now = datetime.now(UTC).replace(microsecond=0)
    for name, published, monitor, fetch in (("old", now - timedelta(days=3), 'alert_max_age = "2d"', ""),
                                            ("off", now, "", "reread_updates = false")):
        site.pages[PATH] = Page(_page(first, published))
        site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", published, published),
                                       "application/atom+xml")
        cfg = write_config(tmp_path / f"{name}.toml", f"sqlite:///{tmp_path / name}.db",
                           source("Wire", site.url("/atom.xml")), rule("kz-mediation", RULE, ["hook"]),
                           webhook_channel("hook", webhook.url("/hook")), monitor=monitor, fetch=fetch)
        asyncio.run(run_once(cfg, everything=True))
        fetched = requests_to(site, PATH)
        site.pages[PATH] = Page(_page(full, published))
        site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", published, now + timedelta(minutes=1)),
                                       "application/atom+xml")
        [report] = asyncio.run(run_once(cfg, everything=True))
        assert report.updated_articles == 0 and requests_to(site, PATH) == fetched, name
        assert "not a mediator" not in articles(cfg)[0].text
    assert webhook.posts("/hook") == []


def test_the_feeds_text_updates_an_article_without_its_page(tmp_path: Path, site: Site, webhook: Site) -> None:
    """``full_text = false``: the feed's own text is the article; an RSS item whose description
    gains the statement (RSS says nothing of updates) is read again and alerts, from the real
    CLI's ``run --once``."""
    now = datetime.now(UTC).replace(microsecond=0)

    def rss(description: str) -> bytes:
        return f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Wire</title>
<link>{site.base}/</link><description>News</description><item><title>{HEADLINE}</title>
<link>{site.url(PATH)}</link><guid isPermaLink="false">tokayev</guid>
<pubDate>{now.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>
<description>{html.escape(description)}</description></item></channel></rss>""".encode()

    site.pages["/rss.xml"] = Page(rss("<p>Tokayev spoke to reporters in Astana.</p>"), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("Wire", site.url("/rss.xml"), full_text=False), rule("kz-mediation", RULE, ["hook"]),
                       webhook_channel("hook", webhook.url("/hook")))
    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 0, res.stderr
    statement = "Kazakhstan is not a mediator in the military conflict between Russia and Ukraine, Tokayev said."
    site.pages["/rss.xml"] = Page(rss(f"<p>Tokayev spoke to reporters in Astana.</p><p>{statement}</p>"),
                                  "application/rss+xml")
    res = run_monitor(cfg, "run", "--once", "--all")
    assert res.returncode == 0, res.stderr
    assert "1 updated article" in res.stderr and "0 new articles, 1 updated article, 1 alert created" in res.stderr, \
        res.stderr
    [hook] = webhook.post_json("/hook")
    assert [s["text"] for s in hook["statements"]] == [statement]
    assert requests_to(site, PATH) == 0
    [art] = articles(cfg)
    assert statement in art.text
    [listed] = json.loads(run_monitor(cfg, "articles", "--json").stdout)
    assert listed["reread_count"] == 1 and listed["reread_at"] is not None


def test_a_page_that_says_much_less_now_does_not_wipe_what_was_read(tmp_path: Path, site: Site,
                                                                   webhook: Site) -> None:
    """The entry changed and its page now holds a short notice (an error page, a retraction):
    the article keeps what it said, with the notice after it; a later page that fails keeps it
    too."""
    _, full = _story()
    now = datetime.now(UTC).replace(microsecond=0)
    site.pages[PATH] = Page(_page(full, now))
    site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", now, now), "application/atom+xml")
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", site, webhook)
    asyncio.run(run_once(cfg, everything=True))
    notice = ("This article has been updated by the editors of Loopback Wire after publication and the "
              "interview has been moved to a page of its own, which readers will find in our archive soon.")
    site.pages[PATH] = Page(_page([notice], now))
    site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", now, now + timedelta(minutes=3)),
                                   "application/atom+xml")
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert report.updated_articles == 1, report
    [art] = articles(cfg)
    assert "Kazakhstan is not a mediator" in art.text and art.text.rstrip().endswith(notice)
    assert len(webhook.posts("/hook")) == 1  # the first reading's alert, nothing again

    _age_last_reading(cfg)
    site.pages[PATH] = Page(b"gone", "text/plain", 503)
    site.pages["/atom.xml"] = Page(_atom(site, "Tokayev on the war.", now, now + timedelta(minutes=30)),
                                   "application/atom+xml")
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert report.status == "ok" and report.updated_articles == 0, report
    [again] = articles(cfg)
    assert again.text == art.text and again.reread_count == 2 and again.full_text


def test_what_the_digest_of_an_entry_sees() -> None:
    """A change of the title, the content's words or the entry's updated date is a change;
    its markup (a tracking pixel, attributes) is not. RSS items have no updated date of their
    own: feedparser's fallback to the published date is not taken for one."""
    base = FeedEntry(guid="g", url="http://example.test/a", title="Talks in Astana",
                     content_html='<p class="x">Talks <b>resumed</b>.</p>', published=None)

    def variant(**changes: str | None) -> str:
        fields = {"guid": base.guid, "url": base.url, "title": base.title, "content_html": base.content_html,
                  "published": base.published, "updated": base.updated, **changes}
        return FeedEntry(**fields).digest()  # type: ignore[arg-type]

    assert variant() == base.digest()
    assert variant(content_html='<p>Talks <strong>resumed</strong>.<img src="/px?t=93"></p>') == base.digest()
    assert variant(content_html="<p>Talks resumed. Tokayev said more.</p>") != base.digest()
    assert variant(title="Talks in Astana resume") != base.digest()
    assert variant(updated="2026-12-06T10:00:00Z") != base.digest()

    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://example.test/</link>
<description>d</description><item><title>a</title><link>http://example.test/a</link>
<pubDate>Sun, 06 Dec 2026 10:00:00 +0000</pubDate></item></channel></rss>"""
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:t</id>
<updated>2026-12-06T10:00:00Z</updated><entry><title>a</title><id>urn:a</id><link href="http://example.test/a"/>
<updated>2026-12-06T11:30:00Z</updated></entry></feed>"""
    [item] = parse_feed(rss, "http://example.test/rss").entries
    [entry] = parse_feed(atom, "http://example.test/atom").entries
    assert item.updated is None and entry.updated == "2026-12-06T11:30:00Z"


def _age_last_reading(cfg: Path) -> None:
    from sqlmodel import select

    from monitor.config import load_config
    from monitor.pipeline import REREAD_GAP
    from monitor.store.db import create_db_engine, session_scope
    from monitor.store.models import Article

    engine = create_db_engine(load_config(cfg).database_url)
    try:
        with session_scope(engine) as s:
            for art in s.exec(select(Article)).all():
                if art.reread_at is not None:
                    art.reread_at = art.reread_at - timedelta(seconds=REREAD_GAP + 1)
                    s.add(art)
    finally:
        engine.dispose()
