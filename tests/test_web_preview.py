"""The rule editor's preview narrows the stored articles in SQL before evaluating them, and still
lists exactly the articles a full scan with the real matcher (as ``monitor backtest``) finds,
on SQLite and PostgreSQL: whatever the accents and case an article writes a word with."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import text
from sqlmodel import col, select

from monitor.ingest import document_of, store_article
from monitor.match import trial_rule
from monitor.match.evaluate import DocIndex
from monitor.store import Article, Source, create_db_engine, session_scope, upgrade
from monitor.store.db import MIGRATIONS
from monitor.web.rules import preview

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

# (title, body): accented, unaccented, odd-case, Cyrillic ё/й and prefix spellings, and near misses.
ARTICLES = [
    ("Türkiye offers to host talks", "Ankara said Türkiye could act as a mediator between the sides."),
    ("TÜRKİYE and Kazakhstan", "The ministry of TÜRKİYE called Kazakhstan a possible mediator."),
    ("Turkiye in brief", "Turkiye will host the summit; a mediator was not named."),
    ("Talks in Astana", "KAZakhstan is ready to be a médiateur, officials told reporters."),
    ("Kazakhstan's offer", "Kazakhstan proposed itself as a Mediatorin for the dispute."),
    ("Ёлка на площади", "В Алма-Ате установили ёлку; Казахстан — посредник в переговорах."),
    ("Елка на площади", "Казахстан не посредник, а площадка для переговоров."),
    ("Mayor's day", "The mayor of Istanbul spoke about traffic, not about Turkey's role."),
    ("Weather", "Rain in Almaty; no mention of any negotiation at all."),
    ("Turk news", "Turkish officials (not Turkiye's) met Kazakh delegates as mediators."),
    ("snake_case words", "A line with foo_bar and foobar and mediation_team in it."),
]

QUERIES = [
    "Turkiye AND mediator",  # accented and odd-case spellings in the articles
    "türkiye",  # an accented query word
    "Kazakhstan NEAR/15 (mediat* OR médiateur)",  # prefix, accent in the query
    "казахстан AND посредник",
    "ёлка OR елку",  # ё folds to е on both sides
    "Turk* AND NOT Turkiye",
    "foo_bar",  # '_' is a LIKE wildcard: it must match itself only
    "mediation_team OR zzyzx",
]


def _store(engine: object) -> list[int]:
    ids = []
    with session_scope(engine) as s:  # type: ignore[arg-type]
        src = Source(name="Outlet", url="https://outlet.example/feed", kind="feed")
        s.add(src)
        s.flush()
        assert src.id is not None
        for i, (title, body) in enumerate(ARTICLES):
            art = Article(source_id=src.id, guid=f"g{i}", url=f"https://outlet.example/{i}",
                          original_url=f"https://outlet.example/{i}", title=title, text=body, language="en",
                          first_seen_at=NOW - timedelta(hours=i + 1))
            ids.append(store_article(s, art))
        # One outside the window: the preview must not list it.
        old = Article(source_id=src.id, guid="old", url="https://outlet.example/old", original_url="x",
                      title="Türkiye, a mediator", text="Old news.", first_seen_at=NOW - timedelta(days=40))
        store_article(s, old)
    return ids


def _full_scan(engine: object, query: str, days: int) -> list[int]:
    """What ``monitor backtest`` does: every article of the window through the compiled rule."""
    rule = trial_rule(query, None).rules[0]
    with session_scope(engine) as s:  # type: ignore[arg-type]
        rows = s.exec(select(Article, Source.name).join(Source, col(Source.id) == col(Article.source_id))
                      .where(col(Article.first_seen_at) >= NOW - timedelta(days=days))
                      .order_by(col(Article.first_seen_at).desc(), col(Article.id).desc())).all()
        return [a.id or 0 for a, name in rows if rule.test(DocIndex(document_of(a, name)))]


def test_narrowed_preview_lists_exactly_what_a_full_scan_matches(database_url: str) -> None:
    engine = create_db_engine(database_url)
    upgrade(engine)
    _store(engine)
    for query in QUERIES:
        expected = _full_scan(engine, query, 30)
        pv = preview(engine, None, query, days=30, now=NOW)
        assert pv.error is None, (query, pv.error)
        assert [h.article_id for h in pv.hits] == expected, query
        assert pv.total == len(expected)
        if "NOT" not in query:  # narrowed: only candidates holding the anchor words are evaluated
            assert pv.scanned < len(ARTICLES), (query, pv.scanned)
    # The accented spellings are found for the unaccented query word, and vice versa.
    titles = {h.title for h in preview(engine, None, "Turkiye AND mediator", days=30, now=NOW).hits}
    assert titles == {"Türkiye offers to host talks", "TÜRKİYE and Kazakhstan", "Turkiye in brief"}
    assert {h.title for h in preview(engine, None, "türkiye", days=30, now=NOW).hits} == titles | {"Turk news"}
    assert [h.title for h in preview(engine, None, "foo_bar", days=30, now=NOW).hits] == ["snake_case words"]
    engine.dispose()


def test_articles_stored_before_the_words_table_are_filled_in_by_the_migration(database_url: str) -> None:
    engine = create_db_engine(database_url)
    upgrade(engine)
    ids = _store(engine)
    # As a database from before migration 1402 (no words stored): its upgrade fills them in.
    spec = importlib.util.spec_from_file_location("m1402", MIGRATIONS / "versions" / "1402_web_terms.py")
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE article_terms"))
        with Operations.context(MigrationContext.configure(conn)):
            migration.upgrade()
    pv = preview(engine, None, "Turkiye AND mediator", days=30, now=NOW)
    assert [h.article_id for h in pv.hits] == [ids[0], ids[1], ids[2]]
    assert pv.scanned == 3
    engine.dispose()


def test_article_page_rules_compile_once_per_config_and_follow_a_saved_rule(tmp_path: Path) -> None:
    """The article page explains every configured rule: the compiled set is reused between
    views (10,000 rules took ~1.5 s to compile per view) and replaced when a saved or reloaded
    config brings a new rule, so the page never explains yesterday's rules."""
    from monitor.config import load_config
    from monitor.match.types import Document
    from monitor.web.kit import Console

    def config(rule: str) -> Path:
        path = tmp_path / f"{rule}.toml"
        path.write_text(f'[monitor]\ndatabase = "sqlite:///{tmp_path / "m.db"}"\n'
                        f'[[rule]]\nname = "{rule}"\nquery = "{rule}"\n', encoding="utf-8")
        return path

    current = {"config": load_config(config("mediator"))}
    console = Console(engine=create_db_engine(f"sqlite:///{tmp_path / 'm.db'}"), config=lambda: current["config"],
                      reload=lambda: (True, "reloaded"))
    doc = Document(title="Talks", body="Astana offered to act as a mediator at the summit.")
    first = console.ruleset()
    assert console.ruleset() is first and [m.rule for m in first.match(doc)] == ["mediator"]
    current["config"] = load_config(config("summit"))  # saved from the rule editor
    assert [m.rule for m in console.ruleset().match(doc)] == ["summit"]
    console.engine.dispose()
