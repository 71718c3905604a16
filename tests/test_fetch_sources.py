"""Every source kind on loopback: HTML listing pages, sitemaps (index, Google News, window),
feed autodiscovery, robots.txt, and the source-broken notice reaching a channel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from monitor.sources.listing import article_links, feed_links
from tests.fetch_helpers import (
    articles,
    make_due,
    requests_to,
    run_once,
    source_row,
)
from tests.harness import source, write_config
from tests.newsroom import rss, seed_page
from tests.servers import Page, Site

LISTING = """<!DOCTYPE html><html><head><title>Politics | Loopback Times</title></head><body>
<header><nav><a href="/">Home</a> <a href="/politics/">Politics</a> <a href="/world/">World</a>
<a href="/about">About us</a></nav></header>
<div class="share-menu"><a href="/politics/2025/09/24/share-this-story-on-every-network">Share</a></div>
<main>
 <article><h2><a href="/politics/2025/09/24/kazakhstan-offers-good-services">Kazakhstan offers its good services to both sides</a></h2></article>
 <article><h2><a href="/politics/senate-votes-on-the-new-budget-after-long-debate">Senate votes on the new budget after a long debate</a></h2>
   <a href="/tag/budget">budget</a> <a href="/author/jane-doe">Jane Doe</a></article>
 <div class="teaser"><a href="https://other.example.org/2025/09/24/someone-elses-story-here">Elsewhere: a story on another site</a></div>
 <ul class="pagination"><a href="/politics/?page=2">Next page</a></ul>
 <div class="promo"><a href="/special/picks">Picks</a></div>
</main>
<footer><a href="/privacy">Privacy</a> <a href="/contact">Contact</a>
<a href="/politics/2025/09/01/footer-link-to-an-old-story-about-something">Old story</a></footer>
</body></html>"""


def test_article_links_found_automatically_not_navigation() -> None:
    links = article_links(LISTING.encode(), "http://news.test/politics/")
    assert [link.url for link in links] == [
        "http://news.test/politics/2025/09/24/kazakhstan-offers-good-services",
        "http://news.test/politics/senate-votes-on-the-new-budget-after-long-debate",
    ]
    assert links[0].title == "Kazakhstan offers its good services to both sides"


def test_article_links_by_css_selector() -> None:
    links = article_links(LISTING.encode(), "http://news.test/politics/", "footer a[href*='/2025/'], .promo")
    assert [link.url for link in links] == ["http://news.test/special/picks",  # page order
                                            "http://news.test/politics/2025/09/01/footer-link-to-an-old-story-about-something"]


def test_feed_links_prefer_rss_atom_over_comments_and_json() -> None:
    page = b"""<html><head>
    <link rel="alternate" type="application/rss+xml" title="Comments" href="/comments/feed">
    <link rel="alternate" type="application/feed+json" href="/feed.json">
    <link rel="alternate stylesheet" type="text/css" href="/x.css">
    <link rel="alternate" type="application/atom+xml" href="atom.xml">
    </head></html>"""
    assert feed_links(page, "http://news.test/section/") == [
        "http://news.test/section/atom.xml", "http://news.test/feed.json", "http://news.test/comments/feed"]


def test_html_listing_source_end_to_end(tmp_path: Path, site: Site) -> None:
    site.pages["/politics/"] = Page(LISTING.encode())
    site.pages["/politics/2025/09/24/kazakhstan-offers-good-services"] = Page(seed_page())
    site.pages["/politics/senate-votes-on-the-new-budget-after-long-debate"] = Page(seed_page().replace(b"Kazakhstan", b"Senate"))
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                    source("Times", site.url("/politics/"), type="html"))
    [rep] = asyncio.run(run_once(cfg))
    assert rep.status == "ok" and rep.entries == 2 and rep.new_articles == 2, rep
    stored = articles(cfg)
    assert {a.url for a in stored} == {site.url("/politics/2025/09/24/kazakhstan-offers-good-services"),
                                      site.url("/politics/senate-votes-on-the-new-budget-after-long-debate")}
    assert all(a.full_text and len(a.text) > 500 for a in stored)
    assert requests_to(site, "/robots.txt") == 1  # read once, cached for the site


def _urlset(entries: list[tuple[str, datetime | None, bool]]) -> bytes:
    items = []
    for loc, when, news in entries:
        if news and when:
            items.append(f"""<url><loc>{loc}</loc><news:news><news:publication><news:name>T</news:name>
<news:language>en</news:language></news:publication><news:publication_date>{when.isoformat()}</news:publication_date>
<news:title>Title of {loc.rsplit('/', 1)[-1]}</news:title></news:news></url>""")
        else:
            lm = f"<lastmod>{when.strftime('%Y-%m-%dT%H:%M:%SZ')}</lastmod>" if when else ""
            items.append(f"<url><loc>{loc}</loc>{lm}</url>")
    return ("""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">""" + "".join(items) + "</urlset>").encode()


def test_sitemap_index_news_sitemap_and_window(tmp_path: Path, site: Site) -> None:
    now = datetime.now(UTC)
    site.pages["/sitemap_index.xml"] = Page(f"""<?xml version="1.0"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>{site.url('/news-sitemap.xml')}</loc><lastmod>{now.isoformat()}</lastmod></sitemap>
<sitemap><loc>{site.url('/posts-2019.xml')}</loc><lastmod>2019-12-31</lastmod></sitemap>
</sitemapindex>""".encode(), "application/xml")
    site.pages["/news-sitemap.xml"] = Page(_urlset([
        (site.url("/news/fresh-one"), now - timedelta(hours=1), True),
        (site.url("/news/fresh-two"), now - timedelta(hours=20), False),  # lastmod only
        (site.url("/news/last-week"), now - timedelta(days=7), True),
        (site.url("/news/undated"), None, False),
    ]), "application/xml")
    site.pages["/posts-2019.xml"] = Page(_urlset([(site.url("/old"), datetime(2019, 1, 1, tzinfo=UTC), False)]))
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                    source("Map", site.url("/sitemap_index.xml"), type="sitemap", window="1d", full_text=False))
    [rep] = asyncio.run(run_once(cfg))
    assert rep.status == "ok" and rep.new_articles == 2, rep
    stored = {a.url: a for a in articles(cfg)}
    assert set(stored) == {site.url("/news/fresh-one"), site.url("/news/fresh-two")}
    assert stored[site.url("/news/fresh-one")].title == "Title of fresh-one"
    assert not stored[site.url("/news/fresh-one")].published_estimated  # news:publication_date
    assert requests_to(site, "/posts-2019.xml") == 0  # a child outside the window is not read
    assert any("without a date" in w for w in rep.warnings)


def test_homepage_given_as_feed_finds_its_feed(tmp_path: Path, site: Site) -> None:
    site.pages["/"] = Page(b'<html><head><link rel="alternate" type="application/rss+xml" href="/rss"></head>'
                           b"<body>Home</body></html>")
    site.pages["/rss"] = Page(rss(site, [("/a/1", "One story", datetime(2025, 9, 24, tzinfo=UTC))]),
                              "application/rss+xml", headers={"ETag": '"e1"'})
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("Home", site.url("/"), full_text=False))
    [rep] = asyncio.run(run_once(cfg))
    assert rep.status == "ok" and rep.new_articles == 1
    row = source_row(cfg, "Home")
    assert row.url == site.url("/rss") and row.config_url == site.url("/") and row.etag == '"e1"'
    asyncio.run(run_once(cfg, everything=True))
    assert requests_to(site, "/") == 1 and requests_to(site, "/rss") == 2
    # Editing the URL in the config starts over from the new URL.
    cfg.write_text(cfg.read_text().replace(site.url("/"), site.url("/rss")))
    asyncio.run(run_once(cfg))
    row = source_row(cfg, "Home")
    assert row.url == row.config_url == site.url("/rss")


def test_robots_txt_for_listing_and_article_pages(tmp_path: Path, site: Site) -> None:
    site.pages["/robots.txt"] = Page(b"User-agent: *\nDisallow: /private/\n", "text/plain")
    site.pages["/private/list"] = Page(LISTING.encode())
    site.pages["/feed.xml"] = Page(rss(site, [("/private/story", "Hidden", datetime(2025, 9, 24, tzinfo=UTC))]),
                                   "application/rss+xml")
    site.pages["/private/story"] = Page(seed_page())
    site.pages["/open/list"] = Page(LISTING.encode())
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                    source("Listing", site.url("/private/list"), type="html")
                    + source("Feed", site.url("/feed.xml"))
                    + source("Ignoring", site.url("/open/list"), type="html", robots=False, full_text=False))
    reports = {r.source: r for r in asyncio.run(run_once(cfg))}
    assert reports["Listing"].status == "error" and "robots.txt" in (reports["Listing"].error or "")
    assert requests_to(site, "/private/list") == 0
    [story] = [a for a in articles(cfg) if a.url.endswith("/private/story")]
    assert not story.full_text and "robots.txt" in (story.fetch_error or "")
    assert requests_to(site, "/private/story") == 0
    assert reports["Ignoring"].status == "ok" and reports["Ignoring"].entries == 2


def test_broken_and_recovered_notices_reach_the_channel(tmp_path: Path, site: Site, webhook: Site) -> None:
    site.pages["/feed.xml"] = Page(b"down", "text/plain", 500)
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("Wobbly", site.url("/feed.xml"), full_text=False)
                    + f'[[channel]]\nname = "ops"\ntype = "webhook"\nurl = "{webhook.url("/hook")}"\n',
                    fetch="broken_after = 2", monitor='source_errors_to = "ops"')
    asyncio.run(run_once(cfg))
    assert webhook.post_json("/hook") == []  # one failure is not "broken"
    make_due(cfg, "Wobbly")
    asyncio.run(run_once(cfg))
    [broken] = webhook.post_json("/hook")
    assert "Wobbly" in broken["subject"] and "broken" in broken["subject"].lower()
    assert "HTTP 500" in broken["text"]
    make_due(cfg, "Wobbly")
    asyncio.run(run_once(cfg))
    assert len(webhook.post_json("/hook")) == 1  # still broken: no repeat
    site.pages["/feed.xml"] = Page(rss(site, []), "application/rss+xml")
    make_due(cfg, "Wobbly")
    asyncio.run(run_once(cfg))
    recovered = webhook.post_json("/hook")[-1]
    assert "recovered" in recovered["subject"].lower() and "Wobbly" in recovered["subject"]


OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>My feeds</title></head><body>
 <outline text="News" title="News">
  <outline type="rss" text="Loopback Pravda" title="Loopback Pravda" xmlUrl="{base}/feed.xml" htmlUrl="{base}/"/>
  <outline type="rss" text="Wire &amp; Co" xmlUrl="https://wire.example.org/rss"/>
 </outline>
 <outline type="rss" text="Loopback Pravda" xmlUrl="https://mirror.example.org/feed.xml"/>
 <outline type="rss" text="dup" xmlUrl="https://wire.example.org/rss"/>
</body></opml>"""


def run_monitor(cfg: Path, *args: str) -> Result:
    """The CLI in this process (CliRunner): these commands start no daemon, and it is fast."""
    from monitor.cli import cli

    return CliRunner().invoke(cli, ["--config", str(cfg), *args], catch_exceptions=False)


def test_import_opml_prints_and_appends_valid_entries(tmp_path: Path, site: Site) -> None:
    from monitor.config import load_config

    opml = tmp_path / "subs.opml"
    opml.write_text(OPML.format(base=site.base), encoding="utf-8")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("Loopback Pravda", site.url("/feed.xml")))
    res = run_monitor(cfg, "import-opml", str(opml))
    assert res.exit_code == 0, res.stderr
    assert "# folder: News" in res.stdout and 'name = "Wire & Co"' in res.stdout
    assert site.url("/feed.xml") not in res.stdout  # already in the config
    assert "2 sources, 1 already in the config" in res.stderr
    res = run_monitor(cfg, "import-opml", "--append", str(opml))
    assert res.exit_code == 0, res.stderr
    config = load_config(cfg)
    assert [s.name for s in config.sources] == ["Loopback Pravda", "Wire & Co", "Loopback Pravda (2)"]


def test_add_source_finds_feed_listing_or_sitemap(tmp_path: Path, site: Site) -> None:
    site.pages["/"] = Page(b'<html><head><title>Loopback Pravda</title>'
                           b'<link rel="alternate" type="application/rss+xml" href="/feed.xml"></head></html>')
    site.pages["/feed.xml"] = Page(rss(site, [("/a/1", "One", datetime(2025, 9, 24, tzinfo=UTC))]), "application/rss+xml")
    site.pages["/politics/"] = Page(LISTING.encode())
    site.pages["/sitemap.xml"] = Page(_urlset([(site.url("/x"), None, False)]), "application/xml")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", "")
    out = {}
    for path in ("/", "/politics/", "/sitemap.xml"):
        res = run_monitor(cfg, "add-source", site.url(path))
        assert res.exit_code == 0, res.stderr
        out[path] = res.stdout
    assert f'url = "{site.url("/feed.xml")}"' in out["/"] and 'name = "Loopback Pravda"' in out["/"]
    assert 'type = "html"' in out["/politics/"] and "2 article links" in out["/politics/"]
    assert 'type = "sitemap"' in out["/sitemap.xml"]
    # The printed entry is valid config.
    entry_cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", out["/politics/"])
    assert run_monitor(entry_cfg, "check-config").exit_code == 0
    res = run_monitor(cfg, "add-source", site.url("/missing"))
    assert res.exit_code == 1 and "HTTP 404" in res.stderr


def test_config_problems_in_fetch_keys_are_reported_with_lines(tmp_path: Path) -> None:
    import pytest

    from monitor.config import ConfigError, load_config

    cfg = write_config(tmp_path / "config.toml", "sqlite:///m.db",
                    source("Bad selector", "https://news.example.org/", type="html", links="div[[")
                    + source("Bad window", "https://news.example.org/sitemap.xml", type="sitemap", window="soon")
                    + source("Bad robots", "https://news.example.org/feed", robots="no")
                    + source("Stray", "https://news.example.org/feed2", links="a"),
                    fetch='min_interval = "2h"\nmax_interval = "1h"')
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    text = "\n".join(exc.value.problems)
    assert "source 'Bad selector': links is not a valid CSS selector" in text
    assert "source 'Bad window': window: not a duration" in text
    assert "source 'Bad robots': robots must be true or false" in text
    assert "source 'Stray': unknown key 'links'" in text  # links belongs to type = "html"
    assert "min_interval is longer than max_interval" in text
    assert all(p.startswith(f"{cfg}:") for p in exc.value.problems)


def test_sources_command_shows_state_and_reset_repolls(tmp_path: Path, site: Site) -> None:
    import json

    site.pages["/gone.xml"] = Page(b"gone", "text/plain", 410)
    site.pages["/bad.xml"] = Page(b"no", "text/plain", 500)
    site.pages["/ok.xml"] = Page(rss(site, []), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("Gone", site.url("/gone.xml"))
                    + source("Bad", site.url("/bad.xml")) + source("Ok", site.url("/ok.xml")))
    asyncio.run(run_once(cfg))
    res = run_monitor(cfg, "sources", "--json")
    assert res.exit_code == 0, res.stderr
    state = {it["name"]: it for it in json.loads(res.stdout)}
    assert state["Gone"]["state"] == "disabled" and "410" in state["Gone"]["last_error"]
    assert state["Bad"]["state"] == "failing" and state["Bad"]["consecutive_failures"] == 1
    assert state["Bad"]["next_poll_in_seconds"] > 250
    assert state["Ok"]["state"] == "ok" and state["Ok"]["last_status"] == 200
    text = run_monitor(cfg, "sources").stdout
    assert "Gone" in text and "disabled" in text and "HTTP 410" in text

    site.pages["/gone.xml"] = Page(rss(site, []), "application/rss+xml")  # it came back
    assert run_monitor(cfg, "sources", "--reset", "Gone").exit_code == 0
    [rep] = asyncio.run(run_once(cfg))
    assert rep.source == "Gone" and rep.status == "ok"
    assert run_monitor(cfg, "sources", "--reset", "Nope").exit_code != 0
