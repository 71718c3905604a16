"""What a new user hit on day one (issue 16): counts, exit codes, schedules, old articles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dedup_support import Outlet, Runner, outlets_config, simple_page
from tests.harness import rule
from tests.newsroom import RULE, seed_article, seed_page
from tests.servers import Site


@pytest.fixture
def outlets() -> Iterator[list[Outlet]]:
    sites = [Site().start() for _ in range(2)]
    yield [Outlet("Loopback Pravda", sites[0]), Outlet("Wire Daily", sites[1])]
    for s in sites:
        s.stop()


def test_a_copy_joining_an_alerted_story_counts_no_alert(tmp_path: Path, outlets: list[Outlet], webhook: Site) -> None:
    pravda, wire = outlets
    _, headline, paras = seed_article()
    pravda.publish("/news/kz", headline, seed_page())
    wire.publish("/kz-copy", "Tokayev: no mediator", simple_page("Tokayev: no mediator", paras[1:8]))
    cfg = outlets_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", outlets,
                         rule("kz", RULE, ["hook"]), webhook.url("/hook"))
    runner = Runner(cfg)
    try:
        [first] = runner.cycle(["Loopback Pravda"])
        [copy] = runner.cycle(["Wire Daily"])
    finally:
        runner.close()
    assert (first.new_articles, first.alerts) == (1, 1)
    assert (copy.new_articles, copy.alerts) == (1, 0)  # it matched, joined the story, alerted nobody
    assert len(webhook.post_json("/hook")) == 1


def test_run_once_exits_3_when_every_polled_source_failed(tmp_path: Path, site: Site) -> None:
    from tests.conftest import run_monitor
    from tests.harness import source, write_config
    from tests.newsroom import rss
    from tests.servers import Page

    db = f"sqlite:///{tmp_path / 'm.db'}"
    down = write_config(tmp_path / "down.toml", db, source("Down", "http://127.0.0.1:9/feed.xml"))
    res = run_monitor(down, "run", "--once", "--all")
    assert res.returncode == 3, res.stderr
    assert "every source polled failed" in res.stderr and "Down:" in res.stderr
    site.pages["/feed.xml"] = Page(rss(site, []), "application/rss+xml")
    mixed = write_config(tmp_path / "mixed.toml", f"sqlite:///{tmp_path / 'fresh.db'}", source("Down", "http://127.0.0.1:9/feed.xml"),
                         source("Up", site.url("/feed.xml")))
    res = run_monitor(mixed, "run", "--once", "--all")
    assert res.returncode == 0, res.stderr
    assert "2 sources polled, 1 failed" in res.stderr
