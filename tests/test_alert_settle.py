"""One event, one alert, when its reports became two stories that a later report merged: the
alert's hold (``[monitor] alert_hold``) and ``monitor.alerts.settle``, on both backends, with a
real webhook receiver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor.alerts.outbox import retry
from monitor.cli import cli
from monitor.config import SourceConfig
from monitor.deliver.base import build_channel
from monitor.deliver.worker import Deliverer
from monitor.extract import Extracted
from monitor.ingest import Ingest, Ingested, new_article
from monitor.match import RuleSet
from monitor.parse import FeedEntry
from monitor.store import Source, create_db_engine
from monitor.store.models import Alert, Delivery, Match
from monitor.story.stories import StoryIndex
from tests.harness import start_daemon
from tests.newsroom import RULE, newsroom_config, publish_newsroom, seed_article
from tests.servers import Mailbox, Site, wait_for

SC = SourceConfig(name="Pravda", url="http://pravda.test/feed")
HOLD = 60.0
PARAS = seed_article()[2]
# Two reports of one event that share no text (each matches the rule: Kazakhstan, mediator), and
# the full article, which carries both: it is a copy of each, so it merges their stories.
HEAD, TAIL, FULL = "\n".join(PARAS[1:5]), "\n".join(PARAS[5:11]), "\n".join(PARAS[1:11])


@pytest.fixture
def engine(pravda_store: Engine) -> Engine:
    return pravda_store


def _ingest(engine: Engine, ingest: Ingest, key: str, body: str) -> Ingested:
    with Session(engine, expire_on_commit=False) as s:
        src = s.exec(select(Source)).one()
        entry = FeedEntry(guid=key, url=f"http://pravda.test/{key}", title=f"Tokayev interview ({key})",
                          content_html="", published=datetime.now(UTC), author=None)
        art = new_article(src.id or 0, SC, entry, Extracted(title=None, text=body, published=None, authors=None,
                                                            language="en", canonical_url=None), None)
        done = ingest.run(s, art, src)
        s.commit()
    return done


def _stages(hold: float = HOLD, realert: str | None = None) -> Ingest:
    return Ingest(RuleSet([("kz", RULE)]), StoryIndex(), realert={"kz": realert}, channels={"kz": ("hook",)},
                  hold=hold)


def _deliveries(engine: Engine) -> list[tuple[int, str, str, int | None]]:
    """(delivery id, the alerted article's guid, status, merged into / digest id), in alert order."""
    from monitor.store.models import Article

    with Session(engine) as s:
        rows = s.exec(select(Delivery.id, Article.guid, Delivery.status, Delivery.digest_id)
                      .join(Alert, col(Alert.id) == col(Delivery.alert_id))
                      .join(Match, col(Match.id) == col(Alert.match_id))
                      .join(Article, col(Article.id) == col(Match.article_id))
                      .order_by(col(Delivery.id))).all()
    return [(d or 0, g, st, into) for d, g, st, into in rows]


def _deliver(engine: Engine, webhook: Site, later: float = 0.0) -> int:
    hook = build_channel("hook", "webhook", {"url": webhook.url("/hook")})
    clock = datetime.now(UTC) + timedelta(seconds=later)
    return asyncio.run(Deliverer(engine, {"hook": hook}, clock=lambda: clock).run()).sent


def test_two_stories_of_one_event_merged_while_held_send_one_alert(engine: Engine, webhook: Site) -> None:
    stages = _stages()
    head, tail = _ingest(engine, stages, "head", HEAD), _ingest(engine, stages, "tail", TAIL)
    assert head.alerts == tail.alerts == 1 and head.story.story_id != tail.story.story_id
    assert _deliver(engine, webhook) == 0  # held: neither is due yet
    assert webhook.posts("/hook") == []

    full = _ingest(engine, stages, "full", FULL)  # a copy of both: the stories merge
    assert full.story.merged and full.alerts == 0
    (first, g1, s1, _), (_, g2, s2, into) = _deliveries(engine)
    assert (g1, s1) == ("head", "pending")
    assert (g2, s2, into) == ("tail", "merged", first)  # the head's alert carries the event

    assert _deliver(engine, webhook, later=HOLD + 1) == 1
    [sent] = webhook.post_json("/hook")
    assert sent["title"] == "Tokayev interview (head)"
    # the merged report's outlet is listed, not sent again
    assert _deliver(engine, webhook, later=HOLD + 2) == 0


def test_merged_alert_is_listed_and_can_still_be_sent(engine: Engine, webhook: Site, tmp_path: Path,
                                                       database_url: str) -> None:
    stages = _stages()
    for key, body in (("head", HEAD), ("tail", TAIL), ("full", FULL)):
        _ingest(engine, stages, key, body)
    (first, _, _, _), (merged, _, _, _) = _deliveries(engine)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "{database_url}"\n\n[[source]]\nname = "Pravda"\n'
                   f'url = "http://pravda.test/feed"\n\n[[rule]]\nname = "kz"\nquery = "Kazakhstan"\n')
    listed = CliRunner().invoke(cli, ["--config", str(cfg), "alerts"])
    assert listed.exit_code == 0, listed.output
    line = next(ln for ln in listed.output.splitlines() if ln.split()[0] == str(merged))
    assert "merged" in line and f"into #{first}" in line
    as_json = CliRunner().invoke(cli, ["--config", str(cfg), "alerts", "--json", "--status", "merged"])
    assert f'"merged_into": {first}' in as_json.output

    with Session(engine) as s:  # the analyst wants it anyway
        assert retry(s, merged) == 1
        s.commit()
    assert _deliver(engine, webhook, later=HOLD + 1) == 2
    assert sorted(p["title"] for p in webhook.post_json("/hook")) == ["Tokayev interview (head)",
                                                                    "Tokayev interview (tail)"]


def test_an_analysts_merge_takes_back_a_held_alert(engine: Engine, tmp_path: Path, database_url: str) -> None:
    """Two stories that no report links, each alerted and held: the analyst's `monitor stories
    merge` makes them one event, and the later alert is not sent; the command says so."""
    stages = _stages()
    head, tail = _ingest(engine, stages, "head", HEAD), _ingest(engine, stages, "tail", TAIL)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "{database_url}"\n\n[[rule]]\nname = "kz"\nquery = "Kazakhstan"\n')
    done = CliRunner().invoke(cli, ["--config", str(cfg), "stories", "merge", str(head.story.story_id),
                                    str(tail.story.story_id)])
    assert done.exit_code == 0, done.output
    assert "1 held delivery will not be sent" in done.output
    (first, g1, s1, _), (_, g2, s2, into) = _deliveries(engine)
    assert (g1, s1) == ("head", "pending") and (g2, s2, into) == ("tail", "merged", first)


def test_an_alert_already_sent_is_kept_and_the_held_one_merged(engine: Engine, webhook: Site) -> None:
    """The tail's report alerted at once (no hold) and went out; the head's, held, is the one
    taken back when the full article shows they are one event."""
    _ingest(engine, _stages(hold=0), "tail", TAIL)
    assert _deliver(engine, webhook) == 1
    _ingest(engine, _stages(), "head", HEAD)
    _ingest(engine, _stages(), "full", FULL)
    (sent, g1, s1, _), (_, g2, s2, into) = _deliveries(engine)
    assert (g1, s1) == ("tail", "sent") and (g2, s2, into) == ("head", "merged", sent)
    assert _deliver(engine, webhook, later=HOLD + 1) == 0
    assert len(webhook.posts("/hook")) == 1


def test_new_statement_rule_keeps_a_held_alert_that_quotes_something_new(engine: Engine, webhook: Site) -> None:
    """With realert = "new_statement" a merged story alerts again for a statement its first
    alert's article did not carry (as the gate decides for one story): the tail's quote ("Not
    being a mediator, Kazakhstan is nevertheless ready ...") is not in the head; both go out."""
    stages = _stages(realert="new_statement")
    for key, body in (("head", HEAD), ("tail", TAIL), ("full", FULL)):
        _ingest(engine, stages, key, body)
    assert [st for _, _, st, _ in _deliveries(engine)] == ["pending", "pending"]
    assert _deliver(engine, webhook, later=HOLD + 1) == 2


def test_new_statement_rule_merges_a_held_alert_that_quotes_nothing_new(engine: Engine, webhook: Site) -> None:
    """The same rule, when the later story's alert quotes only what the first story's report
    already said: a report that repeats the head's first statement inside other news (too
    little of either text for a copy) is a story of its own until an article carrying both
    merges them; its alert is then taken back."""
    stages = _stages(realert="new_statement")
    other = "\n".join([PARAS[1], *_OTHER_NEWS])
    _ingest(engine, stages, "head", HEAD)
    assert _ingest(engine, stages, "roundup", other).story.new_story
    assert _ingest(engine, stages, "full", "\n".join([HEAD, *_OTHER_NEWS])).story.merged
    (first, g1, s1, _), (_, g2, s2, into) = _deliveries(engine)
    assert (g1, s1) == ("head", "pending") and (g2, s2, into) == ("roundup", "merged", first)
    assert _deliver(engine, webhook, later=HOLD + 1) == 1


_OTHER_NEWS = [
    "Dock workers at the port of Kessana walked out on Tuesday after talks over night-shift pay broke down.",
    "The union said the strike would last until the operator restored the allowance it cut in the spring.",
    "Container ships were being diverted to two smaller harbours along the coast, the port authority said.",
    "Exporters of grain and cotton warned that a long stoppage would cost them contracts before the harvest.",
    "The regional governor called both sides to a meeting at his office on Thursday morning.",
    "Police said the picket lines outside the main gate had been peaceful and no arrests were made.",
]


def test_the_daemon_sends_a_held_alert_when_its_hold_ends(tmp_path: Path, site: Site, webhook: Site,
                                                         mailbox: Mailbox) -> None:
    """The daemon holds a new alert ``alert_hold`` and sends it then, without waiting for its
    periodic delivery run (an hour here)."""
    publish_newsroom(site)
    db = f"sqlite:///{tmp_path / 'monitor.db'}"
    cfg = newsroom_config(tmp_path / "config.toml", db, site, mailbox.port, webhook.url("/hook"),
                          monitor='alert_hold = "3s"\ndelivery_interval = "1h"\nclaim_interval = "0.2s"',
                          tables="[dedup]\nevents = false\n")
    log = tmp_path / "monitor.log"
    with start_daemon(cfg, log=log) as proc:
        assert wait_for(lambda: bool(webhook.posts("/hook")), 90), log.read_text()[-3000:]
        assert wait_for(lambda: bool(mailbox.messages), 30), log.read_text()[-3000:]
        assert proc.stop() == 0
    engine = create_db_engine(db)
    with Session(engine) as s:
        rows = s.exec(select(Alert.created_at, Delivery.sent_at, Delivery.channel)
                      .join(Delivery, col(Delivery.alert_id) == col(Alert.id))).all()
    engine.dispose()
    assert sorted(ch for _, _, ch in rows) == ["hook", "mail"]
    for created, sent, _ in rows:
        assert sent is not None and (sent - created).total_seconds() >= 3.0
