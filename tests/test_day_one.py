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


def test_alert_ids_differ_between_databases_and_hold_across_retries(
        tmp_path: Path, outlets: list[Outlet], webhook: Site) -> None:
    from sqlmodel import select

    from monitor.alerts.render import stable_id
    from monitor.store import Delivery, session_scope

    pravda, _ = outlets
    _, headline, _ = seed_article()
    pravda.publish("/news/kz", headline, seed_page())
    keys = []
    for n in (1, 2):  # a reset: the same config, a new database
        cfg = outlets_config(tmp_path / f"config{n}.toml", f"sqlite:///{tmp_path / f'm{n}.db'}", [pravda],
                             rule("kz", RULE, ["hook"]), webhook.url("/hook"))
        runner = Runner(cfg)
        try:
            runner.cycle()
            with session_scope(runner.engine) as s:
                [d] = s.exec(select(Delivery)).all()
                stored = d.key
        finally:
            runner.close()
        keys.append(stored)
    posts = webhook.posts("/hook")
    ids = [p.headers.get("Idempotency-Key") or p.headers.get("idempotency-key") or "" for p in posts]
    assert len(ids) == 2 and ids[0] != ids[1]  # a receiver dropping repeats keeps both alerts
    assert keys[0] != keys[1] and keys[0].endswith(":hook")
    assert sorted(ids) == sorted(stable_id(k) for k in keys)  # the id is a function of the stored key: retries repeat it


def test_a_changed_interval_applies_on_start(tmp_path: Path, site: Site) -> None:
    from sqlmodel import select

    from monitor.pipeline import Pipeline
    from monitor.store import Source, session_scope
    from monitor.util import aware
    from tests.harness import source, write_config
    from tests.newsroom import rss
    from tests.servers import Page

    site.pages["/feed.xml"] = Page(rss(site, []), "application/rss+xml")
    db = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = write_config(tmp_path / "config.toml", db, source("Feed", site.url("/feed.xml"), interval="5m"))
    runner = Runner(cfg)
    runner.cycle()
    runner.close()

    def planned() -> float:
        r2 = Runner(cfg)
        try:
            Pipeline(r2.config, r2.engine).sync_sources()  # what the daemon does on start and reload
            with session_scope(r2.engine) as s:
                row = s.exec(select(Source)).one()
                assert row.next_poll_at is not None and row.last_polled_at is not None
                return (aware(row.next_poll_at) - aware(row.last_polled_at)).total_seconds()
        finally:
            r2.close()

    assert planned() == 300
    cfg.write_text(cfg.read_text().replace('interval = "5m"', 'interval = "1m"'))
    assert planned() == 60  # not five minutes away any more
    cfg.write_text(cfg.read_text().replace('interval = "1m"', 'interval = "10m"'))
    assert planned() == 600


def test_listings_read_as_sentences_and_timestamps_carry_offsets(tmp_path: Path, site: Site) -> None:
    import json
    from datetime import datetime

    from tests.conftest import run_monitor
    from tests.harness import source, write_config
    from tests.newsroom import rss
    from tests.servers import Page

    site.pages["/feed.xml"] = Page(rss(site, []), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("Feed", site.url("/feed.xml"), interval="5m", full_text=False))
    assert run_monitor(cfg, "run", "--once", "--all").returncode == 0
    listing = run_monitor(cfg, "sources")
    assert "in 5 min" in listing.stdout and "polled" in listing.stdout and "ago" in listing.stdout, listing.stdout
    empty = run_monitor(cfg, "articles")
    assert empty.returncode == 0 and "no articles stored yet" in empty.stderr
    assert "nothing to prune" in run_monitor(cfg, "prune", "--dry-run").stdout
    for it in json.loads(run_monitor(cfg, "sources", "--json").stdout):
        assert datetime.fromisoformat(it["last_polled_at"]).utcoffset() is not None


def test_webhook_errors_name_the_host(site: Site) -> None:
    import asyncio

    from monitor.deliver.base import DeliveryError, post
    from tests.servers import Page

    site.pages["/hook/secret-token"] = Page(b"nope", "text/plain", status=500)
    with pytest.raises(DeliveryError) as err:
        asyncio.run(post("webhook hook", "POST", site.url("/hook/secret-token"), 5.0, json={}))
    assert "webhook hook (127.0.0.1): HTTP 500" in str(err.value)
    assert "secret-token" not in str(err.value)


def test_extract_and_test_rule_take_allow_private_networks(tmp_path: Path, site: Site) -> None:
    from tests.conftest import run_monitor
    from tests.newsroom import seed_page
    from tests.servers import Page

    site.pages["/a"] = Page(seed_page())
    none = tmp_path / "absent.toml"  # no config: default fetch settings refuse loopback
    refused = run_monitor(none, "extract", site.url("/a"))
    assert refused.returncode != 0
    ok = run_monitor(none, "extract", "--allow-private-networks", site.url("/a"))
    assert ok.returncode == 0, ok.stderr
    assert "Kazakhstan" in ok.stdout
    rule_ok = run_monitor(none, "test-rule", "--allow-private-networks", "--query", "Kazakhstan", site.url("/a"))
    assert rule_ok.returncode == 0, rule_ok.stdout + rule_ok.stderr


def test_add_source_says_a_url_is_already_there(tmp_path: Path, site: Site) -> None:
    from tests.conftest import run_monitor
    from tests.harness import source, write_config
    from tests.newsroom import rss
    from tests.servers import Page

    site.pages["/feed.xml"] = Page(rss(site, []), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("Loopback", site.url("/feed.xml")))
    res = run_monitor(cfg, "add-source", "--allow-private-networks", site.url("/feed.xml"))
    assert res.returncode == 0, res.stderr
    assert "already has" in res.stderr and "'Loopback'" in res.stderr
    assert "(2)" not in res.stdout and res.stdout.strip() == ""
