"""A match as stored and as alert templates see it: rule, field, statement, speaker, highlights."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from monitor.alerts import enqueue_alert
from monitor.alerts.render import AlertMessage
from monitor.config import EntityConfig
from monitor.match import Document, RuleSet
from monitor.match.evaluate import plain_title_body
from monitor.store import Article, Source, create_db_engine, session_scope, upgrade
from monitor.store.models import Alert, Match
from tests.newsroom import SEED

RULE = '@kazakhstan NEAR/15 (mediator OR "good services")'
ENTITIES = {"kazakhstan": EntityConfig("kazakhstan", ("Kazakhstan", "Казахстан"), True)}


def test_match_row_and_render_context_carry_the_statement(database_url: str) -> None:
    engine = create_db_engine(database_url)
    upgrade(engine)
    title, body = plain_title_body(SEED.read_text(encoding="utf-8"))
    [m] = RuleSet([("kz", RULE)], ENTITIES).match(Document(title=title, body=body))
    with session_scope(engine) as s:
        src = Source(name="Loopback Pravda", url="http://127.0.0.1:9/feed.xml")
        s.add(src)
        s.flush()
        assert src.id is not None
        art = Article(source_id=src.id, guid="g", url="http://127.0.0.1:9/a", original_url="http://127.0.0.1:9/a",
                      title=title, text=body, published=datetime(2025, 9, 24, 7, 15, tzinfo=UTC))
        s.add(art)
        s.flush()
        enqueue_alert(s, art, src, m, ("hook",))
    with session_scope(engine) as s:
        row = s.exec(select(Match)).one()
        assert (row.rule, row.field) == ("kz", "body")
        # The sentence holding the most of the rule's words, in the speaker's own words (issue 16.7).
        assert row.quote and row.quote.startswith('"Not being a mediator, Kazakhstan is nevertheless ready')
        assert row.speaker == "Tokayev"
        st = row.statements[0]
        assert [st["text"][a:b] for a, b in st["highlights"]] == ["mediator", "Kazakhstan", "good services"]
        assert {h["text"] for h in row.hits} >= {"Kazakhstan", "mediator", "good services"}
        alert = s.exec(select(Alert)).one()
        assert alert.id is not None
        ctx = AlertMessage.from_payload(alert.id, "kz:1:hook", alert.payload).context()
    assert ctx["rule"] == "kz"
    assert ctx["speaker"] == "Tokayev"
    assert ctx["quote"].startswith('"Not being a mediator, Kazakhstan is nevertheless ready')
    assert ctx["statements"][0]["field"] == "body"
    assert ctx["statements"][0]["marked"].startswith('"Not being a *mediator*, *Kazakhstan* is nevertheless')
    assert "Tokayev" in [s["speaker"] for s in ctx["statements"]][1]
    assert "good services" in ctx["terms"]
