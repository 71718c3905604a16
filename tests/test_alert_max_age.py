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


def test_backlog_is_stored_and_searchable_but_only_fresh_news_alerts(tmp_path: Path, site: Site,
                                                                     webhook: Site) -> None:
    now = datetime.now(UTC)
    _feed(site, [("/old", "A year-old report", now - timedelta(days=365)),
                 ("/fresh", "This morning's report", now - timedelta(hours=1))])
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("Wire", site.url("/feed.xml"), full_text=False),
                       rule("kz", "Kazakhstan AND mediator", ["hook"]), webhook_channel("hook", webhook.url("/hook")),
                       monitor='alert_max_age = "2d"')
    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 0, res.stderr
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
