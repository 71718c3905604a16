"""One story, one alert: copies of an article at other outlets join its story, and the alert names them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from monitor.config import ConfigError, load_config
from monitor.store import Article, session_scope
from monitor.story.reported import also_reported_by
from tests.dedup_support import Outlet, Runner, outlets_config, simple_page
from tests.harness import rule, run_monitor
from tests.newsroom import RULE, seed_article, seed_page
from tests.servers import Site

WIRE_FOOTER = ["Copyright Wire Daily. All rights reserved. This material may not be published, broadcast, "
               "rewritten or redistributed.",
               "Sign up for the Wire Daily newsletter to get the top stories in your inbox every morning."]


def wire_copy(new_sentence: str | None = None) -> tuple[str, list[str]]:
    """The seed story as another outlet prints it: re-headlined, trimmed, edited, re-punctuated."""
    _, _, paras = seed_article()
    body = [p.replace('"', "\u00ab", 1).replace("military conflict", "armed conflict")
            .replace("Russian dictator", "Russian President").replace("Tengrinews", "the Tengrinews portal")
            for p in paras[1:8]]  # photo caption and the last three paragraphs cut
    body.insert(0, "By Anna Miller, Wire Daily staff writer")
    if new_sentence:
        body.insert(3, new_sentence)
    return "Tokayev: Kazakhstan no mediator, but open to host talks", body


TOPICAL = ("Kazakhstan offers Astana for OPEC+ meeting", [
    "Kazakhstan's energy minister said on Tuesday that Astana could host the next OPEC+ technical meeting.",
    "The minister said Kazakhstan would act as a mediator between producers on quotas if asked, "
    "adding that oil output had reached a record in August.",
    "Analysts in Almaty expect the quota talks to be difficult because of the pipeline outage in the Black Sea.",
])


def rules(realert: bool = False) -> str:
    out = rule("kz", RULE, ["hook"])
    if realert:
        out += rule("kz-new", RULE, ["hook"], realert="new_statement")
    return out


@pytest.fixture
def outlets() -> Iterator[list[Outlet]]:
    sites = [Site().start() for _ in range(3)]
    yield [Outlet("Loopback Pravda", sites[0]), Outlet("Wire Daily", sites[1]), Outlet("Steppe Energy", sites[2])]
    for s in sites:
        s.stop()


def publish_seed(o: Outlet) -> str:
    _, headline, _ = seed_article()
    return o.publish("/news/kz-good-services", headline, seed_page())


def test_copies_form_one_story_that_alerts_once_naming_the_other_outlets(
        tmp_path: Path, database_url: str, outlets: list[Outlet], webhook: Site) -> None:
    pravda, wire, energy = outlets
    publish_seed(pravda)
    title, body = wire_copy()
    wire.publish("/2025/09/24/tokayev-mediator", title, simple_page(title, body, "Wire Daily", WIRE_FOOTER))
    energy.publish("/opec-astana", TOPICAL[0], simple_page(*TOPICAL))  # same topic, another story
    cfg = outlets_config(tmp_path / "config.toml", database_url, outlets, rules(), webhook.url("/hook"))
    runner = Runner(cfg)
    try:
        runner.cycle()
    finally:
        runner.close()

    hooks = webhook.post_json("/hook")
    assert sorted(h["outlet"] for h in hooks) == ["Loopback Pravda", "Steppe Energy"]
    story_alert = next(h for h in hooks if h["outlet"] == "Loopback Pravda")
    assert story_alert["also_reported_by"] == ["Wire Daily (en)"]
    assert next(h for h in hooks if h["outlet"] == "Steppe Energy")["also_reported_by"] == []

    arts = {a["source"]: a for a in json.loads(run_monitor(cfg, "articles", "--json").stdout)}
    assert arts["Loopback Pravda"]["story_id"] == arts["Wire Daily"]["story_id"] != arts["Steppe Energy"]["story_id"]
    assert arts["Wire Daily"]["duplicate_of"] is None  # a near copy, not an exact one
    res = run_monitor(cfg, "stories", "--json")
    assert res.returncode == 0, res.stderr
    stories = {s["id"]: s for s in json.loads(res.stdout)}
    story = stories[arts["Wire Daily"]["story_id"]]
    assert story["articles"] == 2 and [o["name"] for o in story["outlets"]] == ["Loopback Pravda", "Wire Daily"]
    assert stories[arts["Steppe Energy"]["story_id"]]["outlets"] == [{"name": "Steppe Energy", "languages": ["en"]}]


def test_later_copies_join_quietly_and_realert_only_for_a_new_statement(
        tmp_path: Path, outlets: list[Outlet], webhook: Site) -> None:
    pravda, wire, energy = outlets
    publish_seed(pravda)
    cfg = outlets_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", outlets, rules(realert=True),
                       webhook.url("/hook"))
    runner = Runner(cfg)
    try:
        runner.cycle()
        assert sorted(h["rule"] for h in webhook.post_json("/hook")) == ["kz", "kz-new"]

        # A copy whose matching sentences are the old ones, re-punctuated and lightly edited.
        title, body = wire_copy()
        wire.publish("/copy", title, simple_page(title, body, "Wire Daily", WIRE_FOOTER))
        runner.cycle()
        assert len(webhook.posts("/hook")) == 2

        # Another outlet's copy carries a matching statement nobody printed before.
        new = ("Tokayev added that Kazakhstan could offer Astana as a venue for negotiations "
               "between the foreign ministers as early as October.")
        title, body = wire_copy(new)
        energy.publish("/kz-copy", "Tokayev offers Astana talks", simple_page(title, body))
        runner.cycle()
        hooks = webhook.post_json("/hook")
        assert len(hooks) == 3
        assert hooks[-1]["rule"] == "kz-new" and "as early as October" in hooks[-1]["quote"]
        assert hooks[-1]["also_reported_by"] == ["Loopback Pravda (en)", "Wire Daily (en)"]
        with session_scope(runner.engine) as s:
            stories = {a.story_id for a in s.exec(select(Article)).all()}
            assert len(stories) == 1
    finally:
        runner.close()


def test_exact_copy_is_marked_duplicate_of_the_first(tmp_path: Path, outlets: list[Outlet], webhook: Site) -> None:
    pravda, wire, _ = outlets
    publish_seed(pravda)
    wire.publish("/same", "Same text, other outlet", seed_page())
    cfg = outlets_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", outlets, rules(),
                       webhook.url("/hook"))
    runner = Runner(cfg)
    try:
        runner.cycle()
        with session_scope(runner.engine) as s:
            first, second = s.exec(select(Article).order_by(Article.id)).all()  # type: ignore[arg-type]
            assert second.duplicate_of == first.id and second.story_id == first.story_id
            assert also_reported_by(s, first.id or 0) == ["Wire Daily (en)"]
            assert also_reported_by(s, second.id or 0) == ["Loopback Pravda (en)"]
    finally:
        runner.close()
    assert len(webhook.posts("/hook")) == 1


def test_copy_after_the_window_starts_a_new_story(tmp_path: Path, outlets: list[Outlet], webhook: Site) -> None:
    pravda, wire, _ = outlets
    publish_seed(pravda)
    cfg = outlets_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", outlets, rules(),
                         webhook.url("/hook"), extra='[dedup]\nwindow = "1h"\nevents = false')  # copies only
    runner = Runner(cfg)
    try:
        runner.cycle()
        with session_scope(runner.engine) as s:
            s.execute(text("UPDATE article SET first_seen_at = :t"), {"t": datetime.now(UTC) - timedelta(hours=2)})
        title, body = wire_copy()
        wire.publish("/copy", title, simple_page(title, body, "Wire Daily", WIRE_FOOTER))
        runner.cycle()
        with session_scope(runner.engine) as s:
            assert len({a.story_id for a in s.exec(select(Article)).all()}) == 2
    finally:
        runner.close()
    assert len(webhook.posts("/hook")) == 2


def test_config_reports_bad_realert_and_dedup_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("""[dedup]
window = "soon"
shingle = 3

[[rule]]
name = "r"
query = "x"
realert = "always"
""")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    msgs = "\n".join(err.value.problems)
    assert f"{cfg}:3: [dedup]: unknown key 'shingle'" in msgs
    assert "[dedup]: not a duration: 'soon'" in msgs
    assert f"{cfg}:8: rule 'r': realert must be one of 'never', 'new_statement', got 'always'" in msgs
    cfg.write_text('[dedup]\nwindow = "2d"\n\n[[rule]]\nname = "r"\nquery = "x"\nrealert = "new_statement"\n')
    c = load_config(cfg, env={})
    assert c.dedup.window == 2 * 86400 and c.rules[0].realert == "new_statement"
