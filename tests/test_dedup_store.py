"""The story index in the database: concurrent instances, pruning, one alert claim per story."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, text
from sqlmodel import Session, select

from monitor.alerts.gate import claim_alert
from monitor.store import Article, Source, create_db_engine, upgrade
from monitor.store.models import DedupBand, DedupClaim, DedupSignature
from monitor.story import content_hash
from monitor.story.prints import paragraph_prints
from monitor.story.stories import PRUNE_CHUNKS, StoryIndex
from tests.harness import pg_database
from tests.newsroom import seed_article


def _copy(trim: int, swap: tuple[str, str] = ("military conflict", "armed conflict")) -> str:
    _, _, paras = seed_article()
    return "\n".join(p.replace(*swap) for p in paras[1:trim])


def _prepared(url: str) -> Engine:
    e = create_db_engine(url)
    upgrade(e)
    with Session(e) as s:
        for name in ("Pravda", "Wire", "Other"):
            s.add(Source(name=name, url=f"http://{name.lower()}.test/feed"))
        s.commit()
    return e


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    e = _prepared(database_url)
    yield e
    e.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """PostgreSQL only: several instances sharing one database is a PostgreSQL deployment."""
    with pg_database() as url:
        e = _prepared(url)
        yield e
        e.dispose()


def test_known_boilerplate_is_each_outlets_own(engine: Engine) -> None:
    """Which paragraphs of several outlets' texts are known as their own outlet's boilerplate,
    read in one statement (the lists bound as JSON on SQLite, as arrays on PostgreSQL): a
    paragraph known for one outlet is not boilerplate in another outlet's text."""
    menu, footer, story = ("Subscribe to our newsletter today", "All rights reserved by the outlet",
                           "The minister said on Tuesday that talks would resume")
    key = {p: int(paragraph_prints(p).keys[0]) for p in (menu, footer, story)}
    with Session(engine) as s:
        ids = {src.name: src.id for src in s.exec(select(Source))}
        pravda, wire, other = ids["Pravda"], ids["Wire"], ids["Other"]
        assert pravda is not None and wire is not None and other is not None
        s.connection().execute(text("INSERT INTO dedup_boilerplate (source_id, paragraph) VALUES (:s, :p)"),
                               [{"s": pravda, "p": key[menu]}, {"s": wire, "p": key[footer]},
                                {"s": other, "p": key[story]}])
        page = f"{menu}\n{story}\n{footer}"
        assert StoryIndex.known_boilerplate(s, [(pravda, page), (wire, page)]) == {(pravda, key[menu]),
                                                                                  (wire, key[footer])}
        assert StoryIndex.known_boilerplate(s, [(other, f"{menu}\n{footer}")]) == set()
        assert StoryIndex.known_boilerplate(s, [(other, page)]) == {(other, key[story])}


def _article(source_id: int, key: str, body: str, when: datetime | None = None) -> Article:
    when = when or datetime.now(UTC)
    return Article(source_id=source_id, guid=key, url=f"http://x.test/{key}", original_url=f"http://x.test/{key}",
                   title=key, text=body, published=when, content_hash=content_hash(body), first_seen_at=when)


def _ingest(e: Engine, art: Article, idx: StoryIndex, hold: threading.Event | None = None,
            assigned: threading.Event | None = None) -> int:
    with Session(e, expire_on_commit=False) as s:
        s.add(art)
        s.flush()
        story = idx.assign(s, art).story_id
        if assigned is not None:
            assigned.set()
        if hold is not None:
            hold.wait(30)
        s.commit()
    return story


def _waiting_on_lock(e: Engine, deadline: float = 20.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        # a new transaction each time: pg_stat_activity is a snapshot taken once per transaction
        with e.connect() as c:
            n = c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'")).scalar_one()
        if n:
            return True
        time.sleep(0.02)
    return False


def _race(e: Engine, idx: StoryIndex, expect_wait: bool) -> tuple[int, int]:
    """Instance 1 assigns its copy and holds its transaction open while instance 2 assigns another."""
    hold, assigned = threading.Event(), threading.Event()
    out: dict[str, int] = {}
    t1 = threading.Thread(target=lambda: out.__setitem__("a", _ingest(e, _article(1, "a", _copy(8)), idx, hold, assigned)))
    t1.start()
    assert assigned.wait(20)  # instance 1 holds its claims, its article is not committed
    t2 = threading.Thread(target=lambda: out.__setitem__("b", _ingest(e, _article(2, "b", _copy(9)), idx)))
    t2.start()
    if expect_wait:
        assert _waiting_on_lock(e), "instance 2 should wait for instance 1's claim"
    else:
        t2.join(30)
    hold.set()
    t1.join(30)
    t2.join(30)
    return out["a"], out["b"]


def test_two_instances_ingesting_copies_at_once_form_one_story(pg_engine: Engine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    idx = StoryIndex()
    a, b = _race(pg_engine, idx, expect_wait=True)
    assert a == b
    with Session(pg_engine) as s:
        assert s.exec(select(func.count()).select_from(DedupClaim)).one() == 0  # claims are transient

    # Without the claim, the second transaction cannot see the first: the story splits.
    with Session(pg_engine) as s:
        s.execute(text("DELETE FROM dedup_band"))
        s.execute(text("DELETE FROM dedup_sig"))
        s.commit()
    monkeypatch.setattr(StoryIndex, "_claim", staticmethod(lambda session, keys: None))
    monkeypatch.setattr(StoryIndex, "_release", staticmethod(lambda session, keys: None))
    with Session(pg_engine) as s:
        s.execute(text("UPDATE article SET guid = guid || '-old', url = url || '-old', content_hash = NULL"))
        s.commit()
    a, b = _race(pg_engine, idx, expect_wait=False)
    assert a != b


def test_one_alert_claim_per_story_and_rule_across_sessions(pg_engine: Engine) -> None:
    idx = StoryIndex()
    with Session(pg_engine, expire_on_commit=False) as s:
        first = _article(1, "a", _copy(8))
        s.add(first)
        s.flush()
        idx.assign(s, first)
        s.commit()
        second = _article(2, "b", _copy(9))
        s.add(second)
        s.flush()
        assert not idx.assign(s, second).new_story
        s.commit()
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def claim(name: str, art: Article, new: bool) -> None:
        with Session(pg_engine) as s:
            art = s.merge(art)
            barrier.wait(10)
            results[name] = claim_alert(s, art, "kz", [], None, new)
            s.commit()

    # both think they are first (as two instances would, each creating the story's first alert)
    ts = [threading.Thread(target=claim, args=("a", first, True)), threading.Thread(target=claim, args=("b", second, True))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(r is not None for r in results.values()) == [False, True]


def _entries(s: Session, article_id: int | None) -> int:
    """Index entries of an article: band rows (SQLite) or its signature row (PostgreSQL)."""
    table = DedupSignature if s.get_bind().dialect.name == "postgresql" else DedupBand
    return int(s.exec(select(func.count()).select_from(table).where(table.article_id == article_id)).one())


def test_band_rows_older_than_the_window_are_pruned(engine: Engine) -> None:
    idx = StoryIndex(window=3600)
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as s:
        old = _article(1, "old", _copy(8), now - timedelta(hours=3))
        s.add(old)
        s.flush()
        idx.assign(s, old, now=now - timedelta(hours=3))
        new = _article(3, "new", "An unrelated report about the harvest in the north of the country.\n" * 3, now)
        s.add(new)
        s.flush()
        idx.assign(s, new, now=now)
        s.commit()
        before = _entries(s, new.id)
        assert before > 0
        pruned = sum(StoryIndex.prune_chunk(s, c, now - timedelta(hours=1)) for c in range(PRUNE_CHUNKS))
        s.commit()
        assert pruned > 0
        assert _entries(s, old.id) == 0
        assert _entries(s, new.id) == before
        # a copy of the old article now starts its own story: the old one is out of the window
        copy = _article(2, "copy", _copy(9), now)
        s.add(copy)
        s.flush()
        assert idx.assign(s, copy, now=now).new_story


def test_a_fuller_copy_bridging_two_stories_merges_them(engine: Engine) -> None:
    """Two trimmed copies sharing no text start two stories; the full article joins them."""
    _, _, paras = seed_article()
    idx = StoryIndex()
    with Session(engine, expire_on_commit=False) as s:
        head = _article(1, "head", "\n".join(paras[1:5]))
        tail = _article(2, "tail", "\n".join(paras[5:11]))
        for a in (head, tail):
            s.add(a)
            s.flush()
            idx.assign(s, a)
        assert head.story_id != tail.story_id
        assert claim_alert(s, tail, "kz", [], None, True) == []  # the tail's story alerted
        full = _article(3, "full", "\n".join(paras[1:11]))
        s.add(full)
        s.flush()
        res = idx.assign(s, full)
        s.commit()
        story = min(head.story_id or 0, tail.story_id or 0)
        assert res.story_id == story and not res.new_story
        assert set(s.exec(select(Article.story_id)).all()) == {story}
        # the merged story remembers that it alerted: a later copy stays quiet
        assert claim_alert(s, full, "kz", [], None, False) is None
