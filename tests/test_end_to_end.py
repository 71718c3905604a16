"""The product's first use case, end to end on loopback: feed -> article -> rule -> mail + webhook."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.harness import run_monitor
from tests.newsroom import SEED_PATH, newsroom_config, publish_newsroom
from tests.servers import Mailbox, Site, body_text, free_port

STATEMENTS = ("Kazakhstan is not a mediator", "good services")


def _quotes_statement(text: str) -> bool:
    return any(s in text for s in STATEMENTS)


def test_seed_article_alerts_once_by_mail_and_webhook(tmp_path: Path, database_url: str, site: Site,
                                                      webhook: Site, mailbox: Mailbox) -> None:
    paths = publish_newsroom(site)
    cfg = newsroom_config(tmp_path / "config.toml", database_url, site, mailbox.port, webhook.url("/hook"))

    first = run_monitor(cfg, "run", "--once")
    assert first.returncode == 0, first.stderr

    # Every article page was fetched (full text), the feed once.
    fetched = {r.path for r in site.requests}
    assert set(paths) <= fetched

    assert len(mailbox.messages) == 1, [m["Subject"] for m in mailbox.messages]
    mail = mailbox.messages[0]
    assert "kz-mediation" in mail["Subject"]
    text = body_text(mail, "plain")
    html = body_text(mail, "html")
    assert _quotes_statement(text), text
    assert site.url(SEED_PATH) in text
    assert "Loopback Pravda" in text
    assert "<mark>" in html and ("mediator</mark>" in html or "venue for negotiations</mark>" in html)

    hooks = webhook.post_json("/hook")
    assert len(hooks) == 1
    payload = hooks[0]
    assert payload["rule"] == "kz-mediation"
    assert payload["url"] == site.url(SEED_PATH)
    assert payload["outlet"] == "Loopback Pravda"
    assert payload["published"].startswith("2025-09-24")
    assert _quotes_statement(" ".join(s["text"] for s in payload["statements"]))
    assert webhook.posts("/hook")[0].headers["idempotency-key"]

    # The articles are stored with their metadata.
    listed = run_monitor(cfg, "articles", "--json")
    assert listed.returncode == 0, listed.stderr
    arts = json.loads(listed.stdout)
    assert len(arts) == len(paths)
    seed = next(a for a in arts if a["url"] == site.url(SEED_PATH))
    assert seed["source"] == "Loopback Pravda"
    assert seed["title"].startswith("Kazakhstan is ready to provide")
    assert seed["language"] == "en"
    assert {"id", "source", "title", "url", "published", "language"} <= set(seed)

    # A second run, even forcing every source, sends nothing more and stores nothing twice.
    second = run_monitor(cfg, "run", "--once", "--all")
    assert second.returncode == 0, second.stderr
    assert len(mailbox.messages) == 1
    assert len(webhook.posts("/hook")) == 1
    assert len(json.loads(run_monitor(cfg, "articles", "--json").stdout)) == len(paths)


def test_dead_mail_server_keeps_alert_pending_until_it_is_back(tmp_path: Path, database_url: str,
                                                               site: Site, webhook: Site) -> None:
    publish_newsroom(site)
    port = free_port()  # nothing listens here yet
    cfg = newsroom_config(tmp_path / "config.toml", database_url, site, port, webhook.url("/hook"),
                       monitor='retry_delay = "1s"')

    first = run_monitor(cfg, "run", "--once")
    assert first.returncode == 0, first.stderr
    assert "failed" in first.stderr and "SMTP 127.0.0.1" in first.stderr
    assert len(webhook.posts("/hook")) == 1  # the other channel is not held back

    mailbox = Mailbox(port).start()
    try:
        time.sleep(1.1)  # the retry delay
        second = run_monitor(cfg, "run", "--once")
        assert second.returncode == 0, second.stderr
        assert len(mailbox.messages) == 1
        assert _quotes_statement(body_text(mailbox.messages[0], "plain"))
        time.sleep(1.1)
        third = run_monitor(cfg, "run", "--once", "--all")
        assert third.returncode == 0, third.stderr
        assert len(mailbox.messages) == 1
        assert len(webhook.posts("/hook")) == 1
    finally:
        mailbox.stop()
