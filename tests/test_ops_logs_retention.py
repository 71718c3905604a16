"""Logs (ids as fields, secrets redacted), retention pruning and `monitor stats`, in process."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from monitor.config import RetentionSettings, load_config
from monitor.ingest import store_article
from monitor.ops import logs
from monitor.ops.retention import prune
from monitor.store import (
    Alert,
    Article,
    Delivery,
    Match,
    Source,
    create_db_engine,
    session_scope,
    upgrade,
)
from monitor.store.terms import holding
from tests.harness import run_monitor


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buf = io.StringIO()
    yield buf
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])
    logs.set_secrets(())


def _capture(buf: io.StringIO, fmt: str) -> logging.Logger:
    logs.setup("DEBUG", fmt)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buf)
    return logging.getLogger("monitor.test")


def test_secrets_from_the_config_never_reach_the_log(tmp_path: Path, captured: io.StringIO) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("""
[monitor]
database = "postgresql+psycopg://monitor:db-Pa55word@127.0.0.1/monitor"
[[channel]]
name = "mail"
type = "email"
host = "${SMTP_HOST}"
from = "a@example.org"
to = ["b@example.org"]
username = "alerts"
password = "${SMTP_PW}"
[[channel]]
name = "hook"
type = "webhook"
url = "https://hooks.example.org/services/${HOOK_PATH}"
""", encoding="utf-8")
    config = load_config(cfg, env={"SMTP_HOST": "smtp.example.org", "SMTP_PW": "hunter2-xyz",
                                   "HOOK_PATH": "T000/B000/XXXXsecret"})
    logs.set_secrets(config.secrets)
    log = _capture(captured, "json")
    log.warning("login with %s failed", "hunter2-xyz")
    log.info("POST https://hooks.example.org/services/T000/B000/XXXXsecret -> 500")
    log.info("connecting to postgresql+psycopg://monitor:db-Pa55word@127.0.0.1/monitor")
    try:
        raise RuntimeError('auth "hunter2-xyz" refused')
    except RuntimeError:
        log.exception("delivery 7 failed")
    out = captured.getvalue()
    for secret in ("hunter2-xyz", "XXXXsecret", "db-Pa55word"):
        assert secret not in out
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines[0]["message"] == "login with *** failed"
    assert lines[3]["delivery_id"] == 7 and "***" in lines[3]["exc_info"]
    # A host from ${SMTP_HOST} is an ordinary setting: a line naming it stays readable (hiding
    # every ${ENV} value starred it, and any text containing it, in every line).
    log.warning("SMTP smtp.example.org:587: connection refused")
    assert json.loads(captured.getvalue().splitlines()[-1])["message"] == "SMTP smtp.example.org:587: connection refused"


def test_text_lines_name_the_source_being_polled(captured: io.StringIO) -> None:
    log = _capture(captured, "text")
    token = logs.SOURCE_ID.set(12)
    try:
        log.warning("source Example: article http://x/1: page not fetched")
        log.info("source 12 (Example): 3 entries")
    finally:
        logs.SOURCE_ID.reset(token)
    log.info("article 5 stored")
    first, second, third = captured.getvalue().splitlines()
    assert first.endswith("page not fetched [source_id=12]")
    assert second.endswith("3 entries")  # the message already names it
    assert " INFO monitor.test: article 5 stored" in third


def _seed(engine: Engine, now: datetime) -> dict[str, int]:
    """Articles of several ages, with and without alerts."""
    ids: dict[str, int] = {}
    with session_scope(engine) as s:
        src = Source(name="s", url="http://127.0.0.1/feed")
        s.add(src)
        s.flush()
        assert src.id is not None
        for name, days, matched in (("new", 1, False), ("old", 40, False), ("old-matched", 40, True),
                                    ("ancient-matched", 400, True)):
            art = Article(source_id=src.id, guid=name, url=f"http://127.0.0.1/{name}", original_url="x",
                          title=name, text="t", first_seen_at=now - timedelta(days=days))
            s.add(art)
            s.flush()
            assert art.id is not None
            ids[name] = art.id
            if matched:
                m = Match(article_id=art.id, rule="r", created_at=now - timedelta(days=days))
                s.add(m)
                s.flush()
                assert m.id is not None
                a = Alert(key=f"r:{art.id}", match_id=m.id, rule="r", created_at=now - timedelta(days=days))
                s.add(a)
                s.flush()
                assert a.id is not None
                s.add(Delivery(key=f"r:{art.id}:hook", alert_id=a.id, channel="hook", status="sent"))
    return ids


def test_retention_prunes_old_articles_and_keeps_alerts_longer(database_url: str) -> None:
    engine = create_db_engine(database_url)
    upgrade(engine)
    now = datetime.now(UTC)
    ids = _seed(engine, now)
    settings = RetentionSettings(articles=30 * 86400, alerts=365 * 86400)
    assert prune(engine, settings, now=now, dry_run=True).deleted["article"] == 2
    result = prune(engine, settings, now=now)
    assert dict(result.deleted) == {"article": 2, "match": 1, "alert": 1, "delivery": 1}
    with session_scope(engine) as s:
        left = {a.guid for a in s.exec(select(Article)).all()}
        assert left == {"new", "old-matched"}
        assert [m.article_id for m in s.exec(select(Match)).all()] == [ids["old-matched"]]
        assert len(s.exec(select(Alert)).all()) == 1 and len(s.exec(select(Delivery)).all()) == 1
    assert prune(engine, settings, now=now).total == 0
    engine.dispose()


def test_pruned_articles_leave_the_previews_word_index(database_url: str) -> None:
    """The rule editor's preview narrows by each article's stored words (article_terms): a
    pruned article's words go with it, on both backends (SQLite's contentless FTS5 table keeps
    them unless told which to drop), and a kept article's stay findable."""
    engine = create_db_engine(database_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        src = Source(name="s", url="http://127.0.0.1/feed")
        s.add(src)
        s.flush()
        assert src.id is not None
        for word, days in (("astana", 1), ("mediator", 40), ("Ankara", 50)):
            store_article(s, Article(source_id=src.id, guid=word, url=f"http://127.0.0.1/{word}", original_url="x",
                                     title=f"{word} talks", text=f"Officials named {word} again.",
                                     first_seen_at=now - timedelta(days=days)))

    def holders(word: str) -> list[int]:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(holding(engine.dialect.name, [[("=", word)]]))]

    assert all(holders(w) for w in ("astana", "mediator", "ankara"))
    assert prune(engine, RetentionSettings(articles=30 * 86400, alerts=365 * 86400), now=now).deleted["article"] == 2
    assert holders("mediator") == [] and holders("ankara") == []
    assert len(holders("astana")) == 1 and len(holders("officials")) == 1
    engine.dispose()


def test_stats_command(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "sqlite:///{db}"\n[retention]\narticles = "30d"\nalerts = "90d"\n',
                   encoding="utf-8")
    engine = create_db_engine(f"sqlite:///{db}")
    upgrade(engine)
    _seed(engine, datetime.now(UTC))
    with session_scope(engine) as s:
        d = s.exec(select(Delivery)).first()
        assert d is not None
        d.status = "pending"
        s.add(d)
    engine.dispose()
    res = run_monitor(cfg, "stats", "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert (st["articles"], st["matches"], st["alerts"], st["deliveries"]) == (4, 2, 2, 2)
    assert st["deliveries_by_status"] == {"pending": 1, "sent": 1}
    assert st["oldest_pending_delivery"]["id"] == d.id and st["database_bytes"] > 0
    text = run_monitor(cfg, "stats").stdout
    assert f"oldest pending delivery: id {d.id}, queued " in text and " ago" in text and "KiB" in text
    pruned = run_monitor(cfg, "prune")
    # 40 days unmatched and 400 days matched go; 40 days matched stays (alerts are kept 90 days).
    assert pruned.returncode == 0 and pruned.stdout.strip() == "deleted 1 alert, 2 articles, 1 delivery, 1 match"
