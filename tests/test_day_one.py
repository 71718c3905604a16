"""What a new user hit on day one (issue 16): counts, exit codes, schedules, old articles."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.dedup_support import Outlet, Runner, outlets_config, simple_page
from tests.harness import rule
from tests.newsroom import RULE, seed_article, seed_page
from tests.servers import Page, Site


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
    # "polled now" when the listing runs within a second of the poll
    assert "in 5 min" in listing.stdout and re.search(r"polled (now|\d+ s ago)", listing.stdout), listing.stdout
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


ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
MATCHED = {"kazakhstan", "mediator", "venue for negotiations"}


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _cli(cfg: Path, *args: str) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from monitor.cli import cli

    res = CliRunner().invoke(cli, ["--config", str(cfg), *args], catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def _one_array(stdout: str) -> list[Any]:
    """The --json convention: one JSON array, each object on a line of its own between [ and ]."""
    items = json.loads(stdout)
    assert isinstance(items, list)
    lines = stdout.strip().splitlines()
    if items:
        assert lines[0] == "[" and lines[-1] == "]"
        assert [json.loads(line.rstrip(",")) for line in lines[1:-1]] == items
    else:
        assert lines == ["[]"]
    return items


def test_every_json_output_is_one_array_with_offsets_and_highlight_offsets(tmp_path: Path, site: Site,
                                                                           webhook: Site) -> None:
    from tests.conftest import run_monitor
    from tests.harness import source, webhook_channel, write_config
    from tests.newsroom import SEED_PATH, publish_newsroom

    publish_newsroom(site)
    page = tmp_path / "seed.html"
    page.write_bytes(seed_page())
    error = "the receiver could not parse the request body " * 4
    webhook.pages["/broken"] = Page(error.encode(), "text/plain", status=500)
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("Loopback Pravda", site.url("/feed.xml")), rule("kz", RULE, ["hook", "broken"]),
                       webhook_channel("hook", webhook.url("/hook")), webhook_channel("broken", webhook.url("/broken")),
                       monitor='retry_delay = "1h"', tables="[dedup]\nevents = false\n")
    assert _cli(cfg, "db", "upgrade")[0] == 0
    for command in ("articles", "stories", "alerts"):  # an empty list says so; its --json is []
        code, out, err = _cli(cfg, command)
        assert (code, out) == (0, "") and err.startswith("no ") and err.endswith(" yet\n"), (command, err)
        assert _one_array(_cli(cfg, command, "--json")[1]) == []
    res = run_monitor(cfg, "run", "--once")
    assert res.returncode == 0, res.stderr
    assert "1 source polled, 0 failed" in res.stderr and "1 alert created" in res.stderr

    outputs: dict[str, Any] = {}
    for name, args in {"articles": ["articles"], "stories": ["stories"], "alerts": ["alerts"], "sources": ["sources"],
                       "test-rule": ["test-rule", "--rule", "kz", str(page), str(tmp_path / "missing.html")],
                       "extract": ["extract", str(page)], "backtest": ["backtest", "--rule", "kz"]}.items():
        code, out, err = _cli(cfg, *args, "--json")
        assert code in (0, 2) if name == "test-rule" else code == 0, (name, err)
        outputs[name] = _one_array(out)
    code, out, _ = _cli(cfg, "stats", "--json")  # a report, not a list: one object
    outputs["stats"] = json.loads(out)
    outputs["webhook"] = webhook.post_json("/hook")
    assert [len(outputs[k]) for k in ("articles", "alerts", "test-rule", "extract", "backtest", "webhook")] == \
        [4, 2, 2, 1, 1, 1]

    stamps = [s for v in outputs.values() for s in _strings(v) if ISO.match(s)]
    assert len(stamps) > 10
    for stamp in stamps:  # every timestamp carries its offset
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp

    # Highlights are one format everywhere: [start, end] offsets into the statement's text.
    alerts = outputs["alerts"]
    statements = [st for r in [*outputs["test-rule"], *outputs["backtest"], *alerts, *outputs["webhook"]]
                  for st in r["statements"]]
    assert len(statements) >= 5
    for st in statements:
        words = {st["text"][a:b].lower() for a, b in st["highlights"]}
        assert words and words <= MATCHED, (st["text"], st["highlights"])
    failed = next(a for a in alerts if a["status"] == "failed")
    assert error.strip() in failed["last_error"]  # the whole text

    # Text output: times in human terms, errors cut at a word with the full text in --json.
    listing = "\n".join(_cli(cfg, c)[1] for c in ("articles", "stories", "alerts", "sources", "stats"))
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}", listing), listing
    text = _cli(cfg, "alerts")[1]
    # The sent alert's WHEN is "now" when the listing runs within a second of the delivery.
    assert re.search(r"retry in \d+ (min|h)", text), text
    assert re.search(r"sent +1 +hook +(now|\d+ (s|min) ago) ", text), text
    [cut] = [line for line in text.splitlines() if line.lstrip().startswith("!")]
    shown = cut.split("! ", 1)[1]
    assert shown.endswith(" …") and len(shown) < len(failed["last_error"])
    assert failed["last_error"].startswith(shown[:-2] + " ")  # cut between two words
    assert re.search(r"1 article from Loopback Pravda \(en\); seen (now|\d+ (s|min) ago); 1 alert \(1 delivery sent\)",
                     _cli(cfg, "stories")[1])
    assert site.url(SEED_PATH) in _cli(cfg, "articles", "--json")[1]
