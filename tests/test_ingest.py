"""The ingest steps one at a time (store -> story -> match -> gate -> outbox), each with its own
typed input and output, and the chain that runs them in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from monitor.alerts.gate import Verdict, gate
from monitor.alerts.outbox import enqueue
from monitor.config import SourceConfig
from monitor.extract import Extracted
from monitor.ingest import Ingest, match_article, new_article, store_article
from monitor.match import RuleSet, body_statements
from monitor.parse import FeedEntry
from monitor.store import Article, Source
from monitor.store.models import Alert, Delivery, Match
from monitor.story.stories import StoryIndex
from tests.newsroom import RULE, seed_article

SC = SourceConfig(name="Pravda", url="http://pravda.test/feed")
WHEN = datetime(2025, 9, 24, 8, 0, tzinfo=UTC)


def _body() -> str:
    return "\n".join(seed_article()[2][1:])


def _entry(key: str, content: str = "") -> FeedEntry:
    return FeedEntry(guid=key, url=f"http://pravda.test/{key}", title=f"Headline {key}",
                     content_html=f"<p>{content}</p>", published=WHEN, author="Feed Author")


@pytest.fixture
def engine(pravda_store: Engine) -> Engine:
    return pravda_store


def _source(s: Session) -> Source:
    return s.exec(select(Source).where(Source.name == "Pravda")).one()


def _stored(s: Session, key: str, body: str) -> Article:
    art = new_article(_source(s).id or 0, SC, _entry(key), Extracted(
        title=None, text=body, published=None, authors=None, language="en", canonical_url=None), None)
    store_article(s, art)
    return art


def test_new_article_takes_the_page_and_falls_back_to_the_feed() -> None:
    page = Extracted(title="Page title", text="Page text.", published=None, authors="Page Author",
                     language="en", canonical_url="http://pravda.test/canonical")
    art = new_article(1, SC, _entry("a", "Feed text."), page, None, now=WHEN)
    assert (art.url, art.text, art.title, art.authors, art.full_text) == \
        ("http://pravda.test/canonical", "Page text.", "Headline a", "Page Author", True)
    art = new_article(1, SC, _entry("b", "Feed text."), None, "HTTP 404", now=WHEN)
    assert (art.text, art.authors, art.full_text, art.fetch_error) == ("Feed text.", "Feed Author", False, "HTTP 404")
    assert art.published == WHEN and not art.published_estimated and art.content_hash


def test_store_article_refuses_a_url_stored_already(engine: Engine) -> None:
    with Session(engine) as s:
        first = _stored(s, "a", "Some text.")
        assert first.id is not None
        s.commit()
    with Session(engine) as s, pytest.raises(IntegrityError):
        _stored(s, "a", "Other text.")


def test_assign_story_puts_a_copy_into_the_first_articles_story(engine: Engine) -> None:
    with Session(engine) as s:
        idx = StoryIndex()
        first = idx.assign(s, _stored(s, "a", _body()))
        copy = idx.assign(s, _stored(s, "b", _body()))
        assert first.new_story and not copy.new_story and copy.story_id == first.story_id


def test_match_article_sees_the_article_and_its_source() -> None:
    art = new_article(1, SC, _entry("a", _body()), None, None, now=WHEN)
    rules = RuleSet([("kz", RULE), ("here", 'source:Pravda AND site:pravda.test AND Kazakhstan'),
                     ("elsewhere", "source:Other AND Kazakhstan")])
    found = match_article(rules, art, "Pravda")
    assert [m.rule for m in found] == ["kz", "here"]
    assert any("mediator" in st.text for st in found[0].statements)


def test_gate_alerts_once_per_story_and_rule(engine: Engine) -> None:
    rules = RuleSet([("kz", RULE)])
    with Session(engine) as s:
        idx = StoryIndex()
        verdicts = []
        for key in ("a", "b"):
            art = _stored(s, key, _body())
            story = idx.assign(s, art)
            (m,) = match_article(rules, art, "Pravda")
            verdicts.append(gate(s, art, story, m, realert=None))
        assert [v.alert for v in verdicts] == [True, False]
        # A copy carrying a matching sentence the story did not have alerts again with
        # realert = "new_statement", quoting only that sentence.
        new = "Kazakhstan offered to act as a mediator between the parties once more, the minister said."
        art = _stored(s, "c", _body() + "\n" + new)
        story = idx.assign(s, art)
        (m,) = match_article(rules, art, "Pravda")
        v = gate(s, art, story, m, realert="new_statement")
        assert v.alert and [st.text for st in v.match.statements] == [new]
        # with its speaker ("the minister": the one named before), as body_statements gives it
        assert v.match.statements[0].speaker == "Tokayev"
        assert list(v.match.statements) == [st for st in body_statements(art.text, m, art.title) if st.text == new]


def test_enqueue_records_every_match_and_alerts_only_on_an_alerting_verdict(engine: Engine) -> None:
    rules = RuleSet([("kz", RULE)])
    with Session(engine) as s:
        src = _source(s)
        a, b = _stored(s, "a", _body()), _stored(s, "b", _body() + "\nMore.")
        (ma,) = match_article(rules, a, src.name)
        (mb,) = match_article(rules, b, src.name)
        enqueue(s, a, src, Verdict(ma, alert=True), ("hook", "mail"))
        enqueue(s, b, src, Verdict(mb, alert=False), ("hook", "mail"))
        s.commit()
        rows = s.exec(select(Match.article_id, Match.quote)).all()
        assert sorted(r[0] for r in rows) == sorted([a.id or 0, b.id or 0]) and all(q for _, q in rows)
        alerts = s.exec(select(Alert)).all()
        assert [(x.key, x.payload["outlet"]) for x in alerts] == [(f"kz:{a.id}", "Pravda")]
        assert sorted(d.channel for d in s.exec(select(Delivery)).all()) == ["hook", "mail"]


def test_ingest_runs_the_steps_in_one_transaction(engine: Engine) -> None:
    ingest = Ingest(RuleSet([("kz", RULE)]), StoryIndex(), realert={}, channels={"kz": ("hook",)})
    with Session(engine) as s:
        src = _source(s)
        first = ingest.run(s, new_article(src.id or 0, SC, _entry("a", _body()), None, None), src)
        second = ingest.run(s, new_article(src.id or 0, SC, _entry("b", _body()), None, None), src)
        s.commit()
    assert (first.matches, first.alerts, first.story.new_story) == (1, 1, True)
    assert (second.matches, second.alerts, second.story.story_id) == (1, 0, first.story.story_id)
