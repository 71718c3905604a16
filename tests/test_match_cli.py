"""``monitor test-rule`` and ``monitor backtest``, run in-process through the real CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlmodel import select

from monitor.cli import cli
from monitor.store import Article, Source, create_db_engine, session_scope, upgrade
from monitor.store.models import Alert, Delivery, Match, Story
from tests.newsroom import SEED, SEED_PATH, seed_page
from tests.servers import Page, Site

CONFIG = """
[monitor]
database = "sqlite:///monitor.db"

[fetch]
allow_private_networks = true
timeout = "5s"

[entity.kazakhstan]
aliases = ["Kazakhstan", "Казахстан", "Қазақстан"]
inflect = true

[[source]]
name = "Loopback Pravda"
url = "http://127.0.0.1:9/feed.xml"

[[rule]]
name = "kz-mediation"
query = '@kazakhstan NEAR/15 (mediator OR "venue for negotiations" OR посредник*)'
channels = ["hook"]

[[rule]]
name = "weather"
query = "snow AND Astana"
channels = ["hook"]

[[channel]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"
"""


def _config(tmp_path: Path) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(CONFIG, encoding="utf-8")
    return p


def _run(cfg: Path, *args: str) -> tuple[int, list[str], str]:
    res = CliRunner().invoke(cli, ["--config", str(cfg), *args], catch_exceptions=False)
    return res.exit_code, res.stdout.splitlines(), res.stderr


def test_test_rule_on_text_html_and_url(tmp_path: Path, site: Site) -> None:
    cfg = _config(tmp_path)
    other = tmp_path / "other.txt"
    other.write_text("Weather\nSnow is expected in Astana tomorrow.\n", encoding="utf-8")
    page = tmp_path / "seed.html"
    page.write_bytes(seed_page())
    site.pages[SEED_PATH] = Page(seed_page(), "text/html; charset=utf-8")

    code, lines, _ = _run(cfg, "test-rule", "--rule", "kz-mediation", "--json",
                          str(SEED), str(page), site.url(SEED_PATH), str(other))
    assert code == 1  # one input did not match
    results = json.loads("\n".join(lines))  # one JSON array, one object per input
    assert [r["matched"] for r in results] == [True, True, True, False]
    for r in results[:3]:
        assert any("Kazakhstan is not a mediator" in s["text"] for s in r["statements"]), r["statements"]
        assert r["speaker"] == "Tokayev"  # the first quote is his own words
        # highlights are [start, end] offsets into the statement's text: they slice out the matched words
        marked = {s["text"][a:b].lower() for s in r["statements"] for a, b in s["highlights"]}
        assert {"kazakhstan", "mediator"} <= marked, marked
        # hits are offsets into the title or body they name
        assert all(h["end"] - h["start"] == len(h["text"]) for h in r["hits"]), r["hits"]
    assert results[2]["input"] == site.url(SEED_PATH)
    assert results[3]["statements"] == [] and results[3]["speaker"] is None
    # The non-match says which clause failed.
    assert any(c.startswith("✗") for c in results[3]["clauses"])


def test_test_rule_explains_in_text_and_rejects_bad_queries(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    art = tmp_path / "a.txt"
    art.write_text("Talks\nКазахстан не является посредником, — заявил Токаев.\n", encoding="utf-8")
    code, lines, _ = _run(cfg, "test-rule", "--query", "@kazakhstan NEAR/3 посредник*", str(art))
    assert code == 0
    assert lines[0].startswith(f"{art}: MATCH")
    assert any('"казахстан не является посредником"' in line for line in lines), lines
    assert "  > [Казахстан] не является [посредником], — заявил Токаев." in lines
    assert "    — Токаев" in lines

    # lang: sees the language detected in a plain-text input, as the daemon does.
    code, lines, _ = _run(cfg, "test-rule", "--query", "@kazakhstan lang:ru", str(art))
    assert code == 0, lines
    code, lines, _ = _run(cfg, "test-rule", "--query", "@kazakhstan lang:en", str(art))
    assert code == 1 and "✗ lang:en" in "\n".join(lines)

    code, lines, _ = _run(cfg, "test-rule", "--query", "snow AND (Astana OR", str(art))
    assert code == 2

    code, lines, _ = _run(cfg, "test-rule", "--query", "Kazakhstan NEAR/2 mediator", str(tmp_path / "missing.txt"))
    assert code == 2


def test_test_rule_names_the_speaker_a_two_sentence_quote_names_itself(tmp_path: Path) -> None:
    """A rule whose clauses fall in the statement and in the sentence naming who made it quotes
    both, and the speaker that sentence names ("This was announced by ...") is printed under it,
    as it is for the statement alone."""
    cfg = _config(tmp_path)
    art = tmp_path / "a.txt"
    art.write_text("Talks\n\nNorland does not count itself a broker in the dispute. "
                   "This was announced by Foreign Minister Elara Voss.\n", encoding="utf-8")
    for query in ("broker", "broker AND Voss"):
        code, lines, _ = _run(cfg, "test-rule", "--query", query, str(art))
        assert code == 0, lines
        assert "    — Foreign Minister Elara Voss" in lines, (query, lines)


def test_backtest_replays_stored_articles_and_sends_nothing(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    upgrade(engine)
    now = datetime.now(UTC)
    seed_text = SEED.read_text(encoding="utf-8").split("\n", 1)[1]
    with session_scope(engine) as s:
        src = Source(name="Loopback Pravda", url="http://127.0.0.1:9/feed.xml")
        s.add(src)
        s.flush()
        assert src.id is not None
        source_id = src.id

        def add(n: int, title: str, text: str, age: timedelta) -> Article:
            a = Article(source_id=source_id, guid=f"g{n}", url=f"http://127.0.0.1:9/a{n}", original_url=f"http://127.0.0.1:9/a{n}",
                        title=title, text=text, published=now - age, first_seen_at=now - age)
            s.add(a)
            return a
        add(1, "Kazakhstan offers good services", seed_text, timedelta(days=2))
        add(2, "Snow in Astana", "Snow is expected in Astana.", timedelta(days=1))
        add(3, "Old news", "Kazakhstan is not a mediator, Tokayev said.", timedelta(days=40))
        a4 = add(4, "Already sent", "Kazakhstan will not be a mediator, he said.", timedelta(hours=3))
        s.flush()
        assert a4.id is not None
        _alert(s, a4.id, "sent")

    code, lines, err = _run(cfg, "backtest", "--rule", "kz-mediation", "--since", "30d", "--json")
    assert code == 0, err
    items = json.loads("\n".join(lines))
    assert [i["title"] for i in items] == ["Kazakhstan offers good services", "Already sent"]
    assert items[0]["already_alerted"] is False and items[1]["already_alerted"] is True
    assert any("Kazakhstan is not a mediator" in st["text"] for st in items[0]["statements"])
    assert [st["text"][a:b] for st in items[1]["statements"] for a, b in st["highlights"]] == ["Kazakhstan", "mediator"]
    assert items[0]["speaker"]

    code, lines, err = _run(cfg, "backtest", "--query", "Kazakhstan AND mediator", "--since", "60d")
    assert code == 0
    assert "3 of 4 articles" in err and "nothing was sent" in err
    with session_scope(engine) as s:
        assert len(s.exec(select(Alert)).all()) == 1 and len(s.exec(select(Delivery)).all()) == 1


def _alert(s: Any, article_id: int, status: str | None) -> None:
    """The article's match for kz-mediation as the daemon records it: with an alert delivered
    (``status``) on the hook, or (None) without an alert, its story having alerted."""
    m = Match(article_id=article_id, rule="kz-mediation", hits=[], statements=[])
    s.add(m)
    s.flush()
    if status is not None:
        alert = Alert(key=f"kz-mediation:{article_id}", match_id=m.id, rule="kz-mediation", payload={})
        s.add(alert)
        s.flush()
        assert alert.id is not None
        s.add(Delivery(key=f"kz-mediation:{article_id}:hook", alert_id=alert.id, channel="hook", status=status))


def test_backtest_marks_articles_that_alerted_apart_from_copies_of_a_story_that_did(tmp_path: Path) -> None:
    """Every matched copy of a story is recorded, but only one alerted: the backtest says which
    article the analyst was sent, and which are copies of a story they heard of through another."""
    cfg = _config(tmp_path)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    upgrade(engine)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        src = Source(name="Loopback Pravda", url="http://127.0.0.1:9/feed.xml")
        told, quiet = Story(title="Norland talks"), Story(title="Vessa talks")
        s.add_all([src, told, quiet])
        s.flush()
        assert src.id is not None

        def add(n: int, title: str, story: Story, status: str | None) -> None:
            a = Article(source_id=src.id or 0, guid=f"g{n}", url=f"http://127.0.0.1:9/a{n}",
                        original_url=f"http://127.0.0.1:9/a{n}", title=title, story_id=story.id,
                        text=f"Kazakhstan is not a mediator in the talks, the minister said ({n}).",
                        published=now - timedelta(hours=10 - n), first_seen_at=now - timedelta(hours=10 - n))
            s.add(a)
            s.flush()
            assert a.id is not None
            if status != "no match row":
                _alert(s, a.id, status)
        add(1, "Sent to the analyst", told, "sent")
        add(2, "Copy recorded without an alert", told, None)
        add(3, "Alert taken back by a story merge", told, "merged")
        add(4, "Copy of a story that never alerted", quiet, None)
        add(5, "Not seen by the daemon", quiet, "no match row")

    code, lines, err = _run(cfg, "backtest", "--rule", "kz-mediation", "--since", "1d")
    assert code == 0, err
    titles = [line for line in lines if "Loopback Pravda" in line]
    assert [t.split("Loopback Pravda", 1)[1].strip() for t in titles] == [
        "Sent to the analyst (already alerted)",
        "Copy recorded without an alert (story already alerted)",
        "Alert taken back by a story merge (story already alerted)",
        "Copy of a story that never alerted",
        "Not seen by the daemon"]

    code, lines, err = _run(cfg, "backtest", "--rule", "kz-mediation", "--since", "1d", "--json")
    assert code == 0, err
    marks = {i["title"]: (i["already_alerted"], i["story_alerted"]) for i in json.loads("\n".join(lines))}
    assert marks == {"Sent to the analyst": (True, False),
                     "Copy recorded without an alert": (False, True),
                     "Alert taken back by a story merge": (False, True),
                     "Copy of a story that never alerted": (False, False),
                     "Not seen by the daemon": (False, False)}
