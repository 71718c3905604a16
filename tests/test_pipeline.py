"""Pipeline behaviour a user notices: feed content as a fallback, full_text = false, GUID dedup."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fetch_helpers import articles, run_once
from tests.harness import run_monitor, source, write_config
from tests.newsroom import SEED_PATH, newsroom_config, publish_newsroom, rss, seed_article
from tests.servers import Mailbox, Page, Site


def test_unreachable_page_falls_back_to_feed_content(tmp_path: Path, database_url: str, site: Site,
                                                     webhook: Site, mailbox: Mailbox) -> None:
    publish_newsroom(site)
    _, headline, paras = seed_article()
    # The article page is gone, but the feed carries the statement in its description.
    site.pages[SEED_PATH] = Page(b"gone", "text/plain", 503)
    feed = rss(site, [(SEED_PATH, headline, datetime(2025, 9, 24, 7, 15, tzinfo=UTC))], {SEED_PATH: paras[3]})
    site.pages["/feed.xml"] = Page(feed, "application/rss+xml")
    cfg = newsroom_config(tmp_path / "config.toml", database_url, site, mailbox.port, webhook.url("/hook"))

    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 0, res.stderr
    assert "page not fetched, using the feed's content" in res.stderr and site.url(SEED_PATH) in res.stderr
    [art] = json.loads(run_monitor(cfg, "articles", "--json").stdout)
    assert art["full_text"] is False
    [hook] = webhook.post_json("/hook")
    assert any("Kazakhstan is not a mediator" in s["text"] for s in hook["statements"])


# What a news site's server answers a crawler in Europe instead of the article: its consent wall.
CONSENT_WALL = b"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Before you continue</title>
</head><body><main><h1>We value your privacy</h1>
<p>We and our 842 partners store and access information on your device, such as cookies, and process
personal data, such as unique identifiers and standard information sent by a device, for personalised
advertising and content, advertising and content measurement, audience research and services development.</p>
<p>With your permission we and our partners may use precise geolocation data and identification through
device scanning. You may click to consent to our and our partners' processing as described above.</p>
<p>Alternatively you may access more detailed information and change your preferences before consenting
or to refuse consenting. Please note that some processing of your personal data may not require your
consent, but you have a right to object to such processing. Your preferences will apply to this website only.</p>
<form method="post"><button name="agree">Accept all</button> <button name="reject">Reject all</button></form>
</main></body></html>"""


def test_a_consent_wall_is_not_the_article(tmp_path: Path, database_url: str, site: Site, webhook: Site,
                                          mailbox: Mailbox) -> None:
    """The page is not the article (a consent wall): the statement the feed's summary carries is
    not lost with it, and the outlet's other reports behind the same wall are not taken for
    copies of it. Each article is the feed's text, and says why."""
    publish_newsroom(site)
    _, headline, paras = seed_article()
    rates = ["The central bank of Veldora raised its key interest rate by half a point on Thursday, surprising "
             "economists who had expected a pause.", "Governor Mira Talven said inflation in services remained "
             "too high and that further increases could not be ruled out before the summer."]
    site.pages[SEED_PATH] = Page(CONSENT_WALL)
    site.pages["/markets/rates"] = Page(CONSENT_WALL)
    feed = rss(site, [(SEED_PATH, headline, datetime(2025, 9, 24, 7, 15, tzinfo=UTC)),
                      ("/markets/rates", "Veldora raises rates", datetime(2025, 9, 24, 8, 0, tzinfo=UTC))],
               {SEED_PATH: "\n".join(f"<p>{p}</p>" for p in paras[1:4]),
                "/markets/rates": "".join(f"<p>{p}</p>" for p in rates)})
    site.pages["/feed.xml"] = Page(feed, "application/rss+xml")
    cfg = newsroom_config(tmp_path / "config.toml", database_url, site, mailbox.port, webhook.url("/hook"))

    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 0, res.stderr
    # and the log says the source's pages are walls, once for the poll
    assert res.stderr.count("2 of 2 pages were not the articles their entries describe") == 1, res.stderr
    [hook] = webhook.post_json("/hook")
    assert any("Kazakhstan is not a mediator" in s["text"] for s in hook["statements"]), hook["statements"]
    stored = {a.url: a for a in articles(cfg)}
    talks, rates_article = stored[site.url(SEED_PATH)], stored[site.url("/markets/rates")]
    for a in (talks, rates_article):
        assert not a.full_text and "privacy" not in a.text
        assert a.fetch_error is not None and "does not hold the feed's text" in a.fetch_error
    assert paras[3][:60] in talks.text
    assert rates_article.story_id != talks.story_id and rates_article.duplicate_of is None
    # `monitor sources` says the source's pages are not read, and why
    listed = run_monitor(cfg, "sources")
    assert "2 of the last 2 articles stored without their page: the page does not hold the feed's text" \
        in " ".join(listed.stdout.split()), listed.stdout
    [src] = json.loads(run_monitor(cfg, "sources", "--json").stdout)
    assert (src["recent_articles"], src["recent_without_page"]) == (2, 2)
    # and so does the console's sources page
    from monitor.store.db import create_db_engine
    from monitor.web.data import list_sources

    engine = create_db_engine(database_url)
    try:
        [view] = list_sources(engine, [src["name"]])
    finally:
        engine.dispose()
    assert view.pages is not None and view.pages.startswith("2 of the last 2 articles stored without their page")



def test_a_source_behind_a_wall_gets_one_page_fetched_a_poll(tmp_path: Path, database_url: str,
                                                             site: Site) -> None:
    """Once a source's latest pages were all walls, a poll fetches one new page, as a probe,
    not every one (a crawler fetching page after page from a site that walls it off); the
    others keep the feed's text and say why. When the wall is gone, the probe is the article
    and the poll's other pages are fetched too."""
    from monitor.pipeline import WALL_RUN, WALLED
    from tests.fetch_helpers import requests_to
    from tests.newsroom import unrelated_pages

    when = datetime(2025, 9, 24, 7, 0, tzinfo=UTC)
    items: list[tuple[str, str, datetime]] = []
    summaries: dict[str, str] = {}

    def publish(paths: list[str], page: bytes | None) -> None:
        for k, path in enumerate(paths):
            items.insert(0, (path, f"Region {path[-2:]} measures", when))
            summaries[path] = (f"Officials in region {path[-2:]} announced measures concerning transport, housing, "
                               f"schools, hospitals, farming, bridges, railways, markets and water supplies.")
            site.pages[path] = Page(page if page is not None else list(unrelated_pages().values())[k])
        site.pages["/feed.xml"] = Page(rss(site, items, summaries), "application/rss+xml")

    cfg = write_config(tmp_path / "config.toml", database_url, source("Walled", site.url("/feed.xml")))
    first = [f"/news/a{k:02d}" for k in range(WALL_RUN)]
    publish(first, CONSENT_WALL)
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert report.new_articles == WALL_RUN and all(requests_to(site, p) == 1 for p in first)

    second = [f"/news/b{k:02d}" for k in range(4)]
    publish(second, CONSENT_WALL)
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert report.new_articles == 4
    assert sum(requests_to(site, p) for p in second) == 1, [requests_to(site, p) for p in second]
    assert any("1 of 4 pages fetched, as a probe" in w for w in report.warnings), report.warnings
    stored = {a.url: a for a in articles(cfg)}
    assert sorted(stored[site.url(p)].fetch_error == WALLED for p in second) == [False, True, True, True]
    assert all(summaries[p][:40] in stored[site.url(p)].text for p in second)

    # an entry of the walled source changes: the article is read again from the feed's text,
    # its page (a wall) not fetched
    summaries[first[0]] += " The governor added that the new bridge would open in the spring."
    site.pages["/feed.xml"] = Page(rss(site, items, summaries), "application/rss+xml")
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert (report.new_articles, report.updated_articles) == (0, 1), report
    assert requests_to(site, first[0]) == 1
    assert "new bridge would open" in {a.url: a for a in articles(cfg)}[site.url(first[0])].text

    third = [f"/news/c{k:02d}" for k in range(3)]
    publish(third, None)  # real articles: the wall is gone
    for p in third:
        summaries[p] = dict((path, title) for path, title, _ in items)[p]
    site.pages["/feed.xml"] = Page(rss(site, items, summaries), "application/rss+xml")
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert report.new_articles == 3 and [requests_to(site, p) for p in third] == [1, 1, 1]
    assert not any("probe" in w for w in report.warnings), report.warnings
    stored = {a.url: a for a in articles(cfg)}
    assert all(stored[site.url(p)].full_text for p in third)


def test_what_a_poll_noticed_is_kept_for_monitor_sources_and_the_console(tmp_path: Path, database_url: str,
                                                                        site: Site) -> None:
    """A poll that read its source but skipped an entry (or left links for later, or met walls)
    said so only in the log: `monitor sources` (text and JSON) and the console's sources page
    show the last read's warnings, until a read without any clears them."""
    from monitor.store.db import create_db_engine
    from monitor.web.data import list_sources

    when = datetime(2025, 9, 24, 7, 0, tzinfo=UTC)
    good = rss(site, [("/a/1", "Talks resume in Astana", when)])
    broken = good.replace(b"</channel>", b"<item></item></channel>")  # no link, title or content
    site.pages["/feed.xml"] = Page(broken, "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", database_url, source("Wire", site.url("/feed.xml"), full_text=False))
    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 0, res.stderr

    [src] = json.loads(run_monitor(cfg, "sources", "--json").stdout)
    [warning] = src["last_warnings"]
    assert warning.startswith("entry 1: skipped: empty item") and src["last_warnings_at"], src
    listed = run_monitor(cfg, "sources").stdout
    assert "? entry 1: skipped: empty item" in listed, listed
    engine = create_db_engine(database_url)
    try:
        [view] = list_sources(engine, ["Wire"])
        assert view.warnings == (warning,) and view.warned_at is not None
    finally:
        engine.dispose()

    site.pages["/feed.xml"] = Page(rss(site, [("/a/2", "Talks end", when), ("/a/1", "Talks resume in Astana", when)]),
                                   "application/rss+xml")
    res = run_monitor(cfg, "run", "--once", "--all")
    assert res.returncode == 0, res.stderr
    [src] = json.loads(run_monitor(cfg, "sources", "--json").stdout)
    assert (src["last_warnings"], src["last_warnings_at"]) == ([], None), src
    assert "?" not in run_monitor(cfg, "sources").stdout

def test_the_feeds_summary_of_its_article_is_not_added_again(tmp_path: Path, database_url: str, site: Site,
                                                             webhook: Site, mailbox: Mailbox) -> None:
    """A summary drawn from the article (its lede, as feeds carry) is the page's text already."""
    publish_newsroom(site)
    _, headline, paras = seed_article()
    feed = rss(site, [(SEED_PATH, headline, datetime(2025, 9, 24, 7, 15, tzinfo=UTC))], {SEED_PATH: paras[1]})
    site.pages["/feed.xml"] = Page(feed, "application/rss+xml")
    cfg = newsroom_config(tmp_path / "config.toml", database_url, site, mailbox.port, webhook.url("/hook"))

    assert run_monitor(cfg, "run", "--once").returncode == 0
    [art] = [a for a in articles(cfg) if a.url == site.url(SEED_PATH)]
    assert art.full_text and art.text.count(paras[1][:60]) == 1


def test_full_text_false_uses_feed_only(tmp_path: Path, database_url: str, site: Site, webhook: Site,
                                        mailbox: Mailbox) -> None:
    paths = publish_newsroom(site)
    cfg = newsroom_config(tmp_path / "config.toml", database_url, site, mailbox.port, webhook.url("/hook"))
    cfg.write_text(cfg.read_text().replace('interval = "5m"', 'interval = "5m"\nfull_text = false'))
    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 0, res.stderr
    assert [r.path for r in site.requests] == ["/feed.xml"]  # no article page fetched
    arts = json.loads(run_monitor(cfg, "articles", "--json").stdout)
    assert len(arts) == len(paths) and not any(a["full_text"] for a in arts)


def test_same_guid_with_new_link_is_not_processed_twice(tmp_path: Path, database_url: str, site: Site,
                                                        webhook: Site, mailbox: Mailbox) -> None:
    publish_newsroom(site)
    cfg = newsroom_config(tmp_path / "config.toml", database_url, site, mailbox.port, webhook.url("/hook"))
    assert run_monitor(cfg, "run", "--once").returncode == 0
    assert len(webhook.posts("/hook")) == 1
    # The outlet moves the article (same GUID) and adds tracking to another link.
    feed = site.pages["/feed.xml"]
    assert isinstance(feed, Page)
    moved = feed.body.replace(SEED_PATH.encode(), b"/moved/kz?utm_source=rss", 1)
    site.pages["/feed.xml"] = Page(moved, "application/rss+xml")
    site.pages["/moved/kz"] = site.pages[SEED_PATH]
    assert run_monitor(cfg, "run", "--once", "--all").returncode == 0
    assert len(webhook.posts("/hook")) == 1
    assert len(mailbox.messages) == 1


def test_a_first_poll_starts_the_extraction_workers_with_the_run(tmp_path: Path, database_url: str, site: Site,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Every page of a source's first poll is new: the workers start while its feed downloads.
    Later polls start them with the first new page only (a cron run that finds nothing new
    starts none). Knowing that costs no query of its own: before its first poll, the run reads
    the source table twice (the config's sources brought in, then which are due, never polled
    among them); a third query asked about the never polled."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from monitor.extract import pool
    from monitor.pipeline import Pipeline

    site.pages["/feed.xml"] = Page(rss(site, []), "application/rss+xml")
    site.pages["/other.xml"] = Page(rss(site, []), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", database_url, source("Feed", site.url("/feed.xml")),
                       source("Feed only", site.url("/other.xml"), full_text=False))
    starts: list[int] = []
    monkeypatch.setattr(pool, "warm_up_soon", lambda: starts.append(1))
    seen: list[str] = []
    poll = Pipeline.poll

    async def marked(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        seen.append("POLL")
        return await poll(self, *args, **kwargs)

    def record(conn: object, cursor: object, statement: str, *rest: object) -> None:
        seen.append(statement)

    monkeypatch.setattr(Pipeline, "poll", marked)
    event.listen(Engine, "before_cursor_execute", record)
    try:
        [first, _] = asyncio.run(run_once(cfg, everything=True))
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert first.status == "ok" and starts == [1]
    before = seen[:seen.index("POLL")]
    assert len([q for q in before if q.lstrip().upper().startswith("SELECT") and "FROM source" in q]) == 2, before
    asyncio.run(run_once(cfg, everything=True))
    assert starts == [1]
    # a source that takes the feed's own content never needs them
    cfg = write_config(tmp_path / "other.toml", database_url, source("New", site.url("/other.xml"), full_text=False))
    asyncio.run(run_once(cfg, everything=True))
    assert starts == [1]


def test_a_poll_of_many_new_pages_holds_only_a_few_at_once(tmp_path: Path, database_url: str, site: Site,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages download much faster than they are extracted: a first poll (or a sitemap) of
    hundreds of new pages keeps only those being downloaded and a few per extraction worker in
    memory, not every page until a worker takes it. All are still stored, in feed order."""
    from monitor import pagework
    from monitor.extract import Extracted, pool
    from monitor.pipeline import PAGES_QUEUED
    from monitor.story.prints import text_prints

    when = datetime(2025, 9, 24, 7, 0, tzinfo=UTC)
    paths = [f"/a/{k}" for k in range(40)]
    for p in paths:
        site.pages[p] = Page(f"<html><body><p>Page {p}</p></body></html>".encode(), "text/html")
    site.pages["/feed.xml"] = Page(rss(site, [(p, f"Story {p}", when) for p in paths]), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", database_url, source("Feed", site.url("/feed.xml")),
                       fetch="concurrency = 2\n")
    held = [0, 0]  # pages handed to extraction and not finished; the most at once
    worker = asyncio.Lock()  # one extraction worker, slower than the downloads

    async def extract(html: bytes, url: str | None, content_type: str | None, timezone: str | None,
                      link: str, headline: str | None, events: bool, feed_html: str = "") -> pagework.Page:
        held[0] += 1
        held[1] = max(held)
        try:
            async with worker:
                await asyncio.sleep(0.02)
            ex = Extracted(title=None, text=f"Text of {url}", published=None, authors=None, language="en",
                           canonical_url=None)
            return pagework.Page(ex, text_prints(headline or "", ex.text, events), link)
        finally:
            held[0] -= 1

    monkeypatch.setattr(pool, "warm_up_soon", lambda: None)
    monkeypatch.setattr(pool, "workers", lambda: 1)
    monkeypatch.setattr(pagework, "extract", extract)
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert report.new_articles == len(paths)
    assert held[1] <= 2 + PAGES_QUEUED
    arts = json.loads(run_monitor(cfg, "articles", "--json").stdout)
    assert sorted(a["url"] for a in arts) == sorted(site.url(p) for p in paths) and all(a["full_text"] for a in arts)


def test_a_poll_lets_each_page_go_once_its_article_is_stored(tmp_path: Path, database_url: str, site: Site,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Storing is one article at a time, in feed order, and slower than extracting in a burst:
    an extracted page (its text and story prints) is kept until its article is stored, not
    until the poll's last one is."""
    import gc
    import weakref

    from monitor import pagework
    from monitor.extract import Extracted, pool
    from monitor.pipeline import Pipeline
    from monitor.story.prints import text_prints

    when = datetime(2025, 9, 24, 7, 0, tzinfo=UTC)
    paths = [f"/a/{k}" for k in range(6)]
    for p in paths:
        site.pages[p] = Page(f"<html><body><p>Page {p}</p></body></html>".encode(), "text/html")
    site.pages["/feed.xml"] = Page(rss(site, [(p, f"Story {p}", when) for p in paths]), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", database_url, source("Feed", site.url("/feed.xml")))
    made: list[weakref.ref[pagework.Page]] = []

    async def extract(html: bytes, url: str | None, content_type: str | None, timezone: str | None,
                      link: str, headline: str | None, events: bool, feed_html: str = "") -> pagework.Page:
        ex = Extracted(title=None, text=f"Text of {url}", published=None, authors=None, language="en",
                       canonical_url=None)
        page = pagework.Page(ex, text_prints(headline or "", ex.text, events), link)
        made.append(weakref.ref(page))
        return page

    alive_at_store: list[int] = []
    ingest = Pipeline._ingest

    def counting(self: Pipeline, *args: Any) -> int | None:
        gc.collect()
        alive_at_store.append(sum(ref() is not None for ref in made))
        return ingest(self, *args)

    monkeypatch.setattr(pool, "warm_up_soon", lambda: None)
    monkeypatch.setattr(pagework, "extract", extract)
    monkeypatch.setattr(Pipeline, "_ingest", counting)
    [report] = asyncio.run(run_once(cfg, everything=True))
    assert report.new_articles == len(paths) and len(made) == len(paths)
    # the last article is stored holding its own page only: the five before it were let go
    assert alive_at_store[-1] == 1, alive_at_store


def test_polls_finishing_together_look_up_their_entries_on_few_connections(
        tmp_path: Path, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls that end together (max_polls of them, at each claim) look up which entries are new
    at most two at a time, each holding a pooled database connection meanwhile: the pool (5 +
    10) and the threads that lease renewals and claims run on stay free for those, however
    many cores the machine has. Every poll's articles are still stored."""
    import threading

    from monitor.pipeline import Pipeline

    when = datetime(2025, 9, 24, 7, 0, tzinfo=UTC)
    names = [f"Feed {k}" for k in range(8)]
    for k in range(len(names)):
        site.pages[f"/feed{k}.xml"] = Page(rss(site, [(f"/a/{k}", f"Story {k}", when)]), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       *(source(n, site.url(f"/feed{k}.xml"), full_text=False) for k, n in enumerate(names)))
    lookups = [0, 0]  # in progress; the most at once
    lock = threading.Lock()
    lookup = Pipeline._lookup

    def slow_lookup(self: Pipeline, source_id: int, entries: list[Any]) -> Any:
        with lock:
            lookups[0] += 1
            lookups[1] = max(lookups)
        try:
            time.sleep(0.1)  # a query waiting for the database
            return lookup(self, source_id, entries)
        finally:
            with lock:
                lookups[0] -= 1

    monkeypatch.setattr(Pipeline, "_lookup", slow_lookup)
    reports = asyncio.run(run_once(cfg, everything=True))
    assert sorted(r.new_articles for r in reports) == [1] * len(names)
    assert lookups[1] <= 2


def test_which_feed_text_a_page_is_missing() -> None:
    """``missing_feed_text``: the feed's text when the page holds under a third of its longer
    words (pairs of characters in Chinese), nothing for a summary too short to tell."""
    from monitor.pagework import missing_feed_text

    _, _, paras = seed_article()
    article = "\n\n".join(paras)
    wall = CONSENT_WALL.decode()
    assert missing_feed_text(article, f"<p>{paras[1]}</p>") is None
    assert missing_feed_text(wall, f"<p>{paras[1]}</p><p>{paras[3]}</p>") == f"{paras[1]}\n\n{paras[3]}"
    assert missing_feed_text(wall, "<p>Read the full story on our site.</p>") is None  # too short to tell
    zh_article = "哈萨克斯坦总统托卡耶夫表示，哈萨克斯坦不是俄乌冲突的调解人，但愿意为谈判提供场地和一切必要的服务。"
    zh_wall = "我们重视您的隐私。我们和合作伙伴在您的设备上存储和访问信息，例如Cookie，并处理个人数据。请点击同意或拒绝。"
    assert missing_feed_text(zh_article + "双方代表团在首都再次会面。", zh_article) is None
    assert missing_feed_text(zh_wall, zh_article) == zh_article
    # a hostile summary of "<" with no ">" is read in linear time, not quadratic
    started = time.process_time()
    assert missing_feed_text(article, "<" * 1_000_000) is None
    assert time.process_time() - started < 1


def test_a_long_page_under_an_unrelated_summary_keeps_both() -> None:
    """A page of 400 words or more that does not hold the feed's summary may still be the article
    (a promotional summary, another language): the feed's text is kept after the page's. A
    shorter one is not the article."""
    from monitor.pagework import NotTheArticle, work
    from tests.newsroom import unrelated_pages

    _, _, paras = seed_article()
    summary = f"<p>{paras[1]}</p><p>{paras[3]}</p>"
    long_page = max(unrelated_pages().values(), key=len)
    page = work(long_page, "https://example.org/a", "text/html", None, "https://example.org/a", "A", False, summary)
    assert page is not None and page.extracted.text.endswith(f"{paras[1]}\n\n{paras[3]}")
    assert page.prints.text == page.extracted.text
    with pytest.raises(NotTheArticle):
        work(CONSENT_WALL, "https://example.org/b", "text/html", None, "https://example.org/b", "B", False, summary)
