"""A new source's backlog is stored but does not alert (issue 16.2): ``[monitor] alert_max_age``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.ingest import too_old
from monitor.store.models import Article
from tests.harness import rule, run_monitor, source, webhook_channel, write_config
from tests.newsroom import rss
from tests.servers import Page, Site

BODY = "Kazakhstan is not a mediator, the president said."


def _feed(site: Site, items: list[tuple[str, str, datetime]]) -> None:
    site.pages["/feed.xml"] = Page(rss(site, items, {p: BODY for p, _, _ in items}), "application/rss+xml")


def _run_with_a_rule(tmp_path: Path, site: Site, webhook: Site, full_text: bool) -> Path:
    """``run --once`` of the site's feed with a rule on ``BODY`` and ``alert_max_age = "2d"``."""
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("Wire", site.url("/feed.xml"), full_text=full_text),
                       rule("kz", "Kazakhstan AND mediator", ["hook"]), webhook_channel("hook", webhook.url("/hook")),
                       monitor='alert_max_age = "2d"')
    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 0, res.stderr
    return cfg


def test_backlog_is_stored_and_searchable_but_only_fresh_news_alerts(tmp_path: Path, site: Site,
                                                                     webhook: Site) -> None:
    now = datetime.now(UTC)
    _feed(site, [("/old", "A year-old report", now - timedelta(days=365)),
                 ("/fresh", "This morning's report", now - timedelta(hours=1))])
    cfg = _run_with_a_rule(tmp_path, site, webhook, full_text=False)
    [hook] = webhook.post_json("/hook")
    assert hook["title"] == "This morning's report"
    # The old article is stored, and the backtest lists it as a would-be alert.
    arts = json.loads(run_monitor(cfg, "articles", "--json").stdout)
    assert {a["title"] for a in arts} == {"A year-old report", "This morning's report"}
    back = run_monitor(cfg, "backtest", "--rule", "kz", "--since", "400d")
    assert "A year-old report" in back.stdout, back.stdout + back.stderr


def test_age_is_by_publication_date_else_first_seen() -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    seen = now - timedelta(hours=1)
    old = Article(source_id=1, guid="g", url="u", original_url="u", title="t", text="b", published=now - timedelta(days=3), first_seen_at=seen)
    undated = Article(source_id=1, guid="g", url="u", original_url="u", title="t", text="b", published=None, first_seen_at=seen)
    estimated = Article(source_id=1, guid="g", url="u", original_url="u", title="t", text="b", published=now - timedelta(days=30),
                        published_estimated=True, first_seen_at=seen)
    assert too_old(old, 2 * 86400, now) and not too_old(old, 4 * 86400, now)
    assert not too_old(undated, 2 * 86400, now) and not too_old(estimated, 2 * 86400, now)
    assert not too_old(old, None, now)


def _undated_feed(site: Site, path: str, title: str) -> None:
    """A feed whose item has no date: the page's own is the article's."""
    site.pages["/feed.xml"] = Page(
        f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Wire</title>
<link>{site.url("/")}</link><item><title>{title}</title><link>{site.url(path)}</link>
<guid isPermaLink="false">{path}</guid><description>{title}</description></item></channel></rss>""".encode(),
        "application/rss+xml")


def _page(footer: str, byline: str = "", meta: str = "") -> bytes:
    paragraphs = "".join(f"<p>{s}</p>" for s in (
        "Officials met in the capital on the second day of the talks on the border crossings.",
        BODY, "Both delegations agreed on the agenda and on the role of the observers, officials said.",
        "A spokesman said a first round of results was expected by the end of the month."))
    return (f"<html><head><title>Talks</title>{meta}</head><body><article><h1>Talks</h1>{byline}{paragraphs}"
            f"</article><footer>{footer}</footer></body></html>").encode()


def test_a_page_dated_only_by_its_copyright_year_still_alerts(tmp_path: Path, site: Site, webhook: Site) -> None:
    """A fresh page with no date of its own but a "(c) 2026" footer was dated 1 January (htmldate's
    last resort), a year too old for ``alert_max_age``: the statement never alerted. Now it takes
    the time it was first seen."""
    this_year = datetime.now(UTC).year
    site.pages["/talks"] = Page(_page(f"&#169; {this_year} Example News. All rights reserved."))
    _undated_feed(site, "/talks", "Talks resume")
    cfg = _run_with_a_rule(tmp_path, site, webhook, full_text=True)
    [hook] = webhook.post_json("/hook")
    assert hook["title"] == "Talks resume"
    [art] = json.loads(run_monitor(cfg, "articles", "--json").stdout)
    assert art["full_text"] and art["published"] is None  # no date of its own: first seen


def test_a_page_date_is_a_whole_date_or_none() -> None:
    """What a page says of its date is kept when it is a day; a year, a month, or a year the page
    mentions is not (dateparser filled the rest from today; htmldate gave the 1st)."""
    from monitor.extract import extract_article

    def published(html: bytes) -> datetime | None:
        ex = extract_article(html, "https://news.example.com/world/talks", "text/html; charset=utf-8")
        assert ex is not None
        return ex.published

    meta = "<meta property='article:published_time' content='{}'>"
    assert published(_page("", meta=meta.format("2024"))) is None
    assert published(_page("", meta=meta.format("March 2024"))) is None
    assert published(_page("", meta=meta.format("1/1"))) is None
    assert published(_page("&#169; 2025 Example News")) is None
    assert published(_page("", byline="<p>Back in 2023 the talks failed.</p>")) is None
    assert published(_page("", meta=meta.format("12 марта 2024"))) == datetime(2024, 3, 12, tzinfo=UTC)  # an English page: UTC
    assert published(_page("", byline="<p class='date'>Published 12 March 2024</p>")) == datetime(2024, 3, 12, tzinfo=UTC)
