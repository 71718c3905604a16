"""One story per event: reports of the same news in other languages and wordings join one story;
similar but different events stay apart; an analyst's split and merge are kept.

The reports come from the stories corpus (CC0, ../shared/data/stories), a subset copied into
tests/fixtures/story_events.jsonl; vectors come from the real bundled model.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from monitor.alerts.gate import claim_alert
from monitor.embed import article_text, get_embedder
from monitor.embed.store import save_vector
from monitor.store import Article, Source, create_db_engine, upgrade
from monitor.store.models import StoryAlert, StoryApart, StoryEvent
from monitor.story import content_hash
from monitor.story.events import name_key, numbers, repeats_headline, signature
from monitor.story.reported import also_reported_by
from monitor.story.stories import StoryIndex, merge_stories, split_article
from tests.harness import run_monitor
from tests.test_dedup_store import _waiting_on_lock

FIXTURE = Path(__file__).parent / "fixtures" / "story_events.jsonl"
RECORDS: list[dict[str, Any]] = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
BY_ID = {r["id"]: r for r in RECORDS}


def test_a_name_is_one_key_in_every_script_and_spelling() -> None:
    spellings = ["Tokayev", "Tokaev", "Токаев", "Тоқаев", "Токаєв", "Tokajew", "Токаева"]
    assert {name_key(w) for w in spellings} == {name_key("Tokayev")}
    assert {name_key(w) for w in ["Kazakhstan", "Казахстан", "Қазақстан", "Kasachstan", "Kazakistan"]} == {
        name_key("Kazakhstan")}
    assert name_key("Halvik") == name_key("ハルビク")  # katakana
    assert name_key("Veldora") != name_key("Valtria")  # two central banks of the corpus' decoy


def test_figures_are_read_the_same_way_in_every_language() -> None:
    assert numbers("auf 7,00 Prozent") == numbers("to 7.00%") == numbers("al 7 %") == {"7"}
    assert numbers("magnitud 6,3") == numbers("M6.3") == {"6.3"}
    assert numbers("1,200 km") == numbers("1.200 km") == {"1200"}
    assert numbers("in 2025, 1 dead") == set()  # years and 0/1 are in every report


def test_headline_names_are_found_but_not_sentence_initial_words() -> None:
    sig = signature("Veldora central bank raises key rate to 7.00%",
                    "CASTRA, Oct 16 - The National Bank of Veldora raised its key policy rate.")
    assert name_key("Veldora") in sig.head
    assert name_key("The") not in sig.names
    empty = signature("", "")
    assert not empty.names and not empty.figures and not empty.index_keys()


def test_a_person_with_title_and_given_names_is_one_name() -> None:
    """Where the names decide (a language the model does not understand), a person counts
    once: a run of capitalised words is one name, and the headline's "Tokayev" is the lead's
    "Kazakh President Kassym-Jomart Tokayev"; Kazakhstan, Ukraine and Astana are three more
    (Russia's key, "ls", is too short to tell names apart)."""
    sig = signature("Tokayev: Kazakhstan no mediator",
                    "Kazakh President Kassym-Jomart Tokayev said on Tuesday that Kazakhstan is no mediator "
                    "between Russia and Ukraine but could host talks in Astana.")
    assert len(sig.units) == 4  # Tokayev (with his title), Kazakhstan, Ukraine, Astana
    [tokayev] = [u for u in sig.units if name_key("Tokayev") in u]
    assert {name_key("Kassym"), name_key("Jomart")} <= tokayev


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    e = create_db_engine(database_url)
    upgrade(e)
    yield e
    e.dispose()


def _vectors(recs: list[dict[str, Any]]) -> np.ndarray:
    return get_embedder().embed([article_text(r["title"], r["text"]) for r in recs])


def _source(s: Session, name: str) -> int:
    src = s.exec(select(Source).where(Source.name == name)).first()
    if src is None:
        src = Source(name=name, url=f"http://{abs(hash(name))}.test/feed")
        s.add(src)
        s.flush()
    assert src.id is not None
    return src.id


def _ingest(s: Session, idx: StoryIndex, r: dict[str, Any], vec: np.ndarray | None, key: str = "") -> Article:
    when = datetime.fromisoformat(r["published"])
    art = Article(source_id=_source(s, r["outlet"]), guid=r["id"] + key, url=r["url"] + key,
                  original_url=r["url"], title=r["title"], text=r["text"], published=when,
                  language=r["language"], content_hash=content_hash(r["text"]) if r["text"] else None,
                  first_seen_at=when)
    s.add(art)
    s.flush()
    if vec is not None:
        save_vector(s, art.id or 0, vec)
    idx.assign(s, art, now=when, vector=vec)
    return art


def _replay(engine: Engine, recs: list[dict[str, Any]]) -> dict[str, int]:
    vecs = _vectors(recs)
    idx = StoryIndex()
    out = {}
    with Session(engine, expire_on_commit=False) as s:
        for r, v in zip(recs, vecs, strict=True):
            out[r["id"]] = _ingest(s, idx, r, v).story_id or 0
            s.commit()
    return out


def test_translations_and_rewrites_join_one_story_and_similar_events_stay_apart(engine: Engine) -> None:
    pred = _replay(engine, RECORDS)
    stories: dict[int, set[str]] = defaultdict(set)
    for rid, sid in pred.items():
        stories[sid].add(BY_ID[rid]["event"])
    events: dict[str, set[int]] = defaultdict(set)
    for rid, sid in pred.items():
        events[BY_ID[rid]["event"]].add(sid)
    # never two events in one story: not the decoy strike at another port that names Kessana,
    # not the other central bank's hike the day before, not Tokayev on energy or public services
    assert all(len(evs) == 1 for evs in stories.values()), dict(stories)
    # each event one story, across en/ru/uk/de/tr/zh, en/es/pt/fr and en/de/fr/es, follow-ups
    # included: the Chinese report of the seed event too, which names no one a key can find (it was
    # a story of its own: a second alert for one event); and the Chinese report of a marathon, its
    # time moved into the seed event's window here, stays apart
    assert {ev: len(sids) for ev, sids in events.items() if len(sids) > 1} == {}
    assert pred["seed-zh-01"] == pred["seed-en-01"] != pred["unrel-marathon-zh-01"]


def _page(r: dict[str, Any]) -> str:
    """The report as an outlet's page: the headline in <h1>, one <p> per paragraph (as the
    corpus README says end-to-end tests serve it)."""
    body = "".join(f"<p>{escape(p)}</p>" for p in r["text"].split("\n") if p.strip())
    return (f"<!doctype html><html lang=\"{r['language']}\"><head><meta charset=\"utf-8\"><title>{escape(r['title'])}"
            f"</title></head><body><header><a href=\"/\">{escape(r['outlet'])}</a></header><main><article>"
            f"<h1>{escape(r['title'])}</h1>{body}</article></main></body></html>")


def test_reports_fetched_as_pages_with_the_headline_in_h1_still_join_one_story(engine: Engine) -> None:
    """The extractor keeps a page's <h1> at the top of the text: each report's lead was its
    headline again, its lead names were the headline's, and the seed event's reports fell into
    several stories (6 for the whole corpus, bench.story_events --pages), one alert each."""
    from monitor.extract.article import extract_article

    recs = []
    for r in RECORDS:
        found = extract_article(_page(r), r["url"])
        assert found is not None and found.text.split("\n")[0] == r["title"]  # the page's <h1>, kept
        recs.append({**r, "text": found.text})
    pred = _replay(engine, recs)
    events: dict[str, set[int]] = defaultdict(set)
    stories: dict[int, set[str]] = defaultdict(set)
    for rid, sid in pred.items():
        events[BY_ID[rid]["event"]].add(sid)
        stories[sid].add(BY_ID[rid]["event"])
    assert {ev: len(sids) for ev, sids in events.items() if len(sids) > 1} == {}
    assert all(len(evs) == 1 for evs in stories.values()), dict(stories)


def test_a_first_paragraph_repeating_the_headline_is_not_the_lead() -> None:
    title = "Tokayev says Kazakhstan will not mediate between Russia and Ukraine"
    lead = "Kazakh President Kassym-Jomart Tokayev told reporters in Astana on Tuesday that his country offers a venue."
    # printed again, or as the outlet rewrote it, or after a kicker: the lead is the next paragraph
    for opening in (title, "Kazakhstan's Tokayev says Kazakhstan will not mediate between Russia and Ukraine",
                    "Analysis\n" + title):
        assert repeats_headline(title, opening.split("\n")[-1])
        assert signature(title, f"{opening}\n{lead}").lead == signature(title, lead).lead
    # a lead sentence restating the headline is the lead
    restated = ("Tokayev says Kazakhstan will not mediate between Russia and Ukraine, but the Kazakh capital "
                "Astana could host talks, officials told Interfax on Tuesday.")
    assert not repeats_headline(title, restated)
    assert name_key("Interfax") in signature(title, restated + "\n" + lead).lead


def test_reports_in_a_language_the_model_was_not_trained_on_join_by_their_names(engine: Engine) -> None:
    """The sentence model was not trained on Kazakh: the Kazakh report that broke the seed news
    is far in meaning from the Russian and English reports of it (cosine ~0.5), which became a
    second story (a second alert). Their lead names (Tokayev, Kazakhstan, Ukraine, Russia, ...,
    5 or more shared) decide instead; Tokayev on trade in Kazakh, moved into the window, shares
    three and stays apart, as does the Russian Tokayev-on-energy report, which shares four."""
    recs = [BY_ID[i] for i in ("seed-kk-01", "seed-ru-01", "seed-en-01", "seed-kk-02",
                               "neg-tokayev-energy-dialogue-ru-01", "seed-uk-01")]
    recs.append({**BY_ID["neg-tokayev-nordessa-trade-kk-01"], "published": "2025-09-24T21:00:00+05:00"})
    pred = _replay(engine, recs)
    assert pred["seed-kk-01"] == pred["seed-ru-01"] == pred["seed-en-01"] == pred["seed-kk-02"] == pred["seed-uk-01"]
    assert pred["neg-tokayev-nordessa-trade-kk-01"] != pred["seed-kk-01"]
    assert pred["neg-tokayev-energy-dialogue-ru-01"] != pred["seed-kk-01"]
    # Only the Kazakh reports are judged by names: the model understands Ukrainian (via Russian)
    with Session(engine) as s:
        blind = {guid for guid, sig in s.exec(select(Article.guid, StoryEvent.sig)
                                              .join(StoryEvent, col(StoryEvent.article_id) == col(Article.id))).all()
                 if sig.get("b")}
    assert blind == {"seed-kk-01", "seed-kk-02", "neg-tokayev-nordessa-trade-kk-01"}


def test_an_article_without_text_a_one_liner_and_an_unknown_script_each_get_a_story(engine: Engine) -> None:
    idx = StoryIndex()
    odd: list[dict[str, Any]] = [{"id": "empty", "outlet": "A", "url": "http://a.test/1", "published": "2025-09-24T10:00:00+00:00",
            "title": "", "text": "", "language": None},
           {"id": "line", "outlet": "A", "url": "http://a.test/2", "published": "2025-09-24T10:00:00+00:00",
            "title": "Tokayev", "text": "Tokayev.", "language": "en"},
           {"id": "amharic", "outlet": "B", "url": "http://b.test/3", "published": "2025-09-24T10:00:00+00:00",
            "title": "ቶካዬቭ ካዛክስታን", "text": "ካዛክስታን አስታራቂ አይደለችም ብለዋል። 24", "language": "am"}]
    vecs = _vectors(odd)
    with Session(engine, expire_on_commit=False) as s:
        arts = [_ingest(s, idx, r, v) for r, v in zip(odd, vecs, strict=True)]
        arts.append(_ingest(s, idx, odd[1], None, key="-novec"))  # the model failed on this one
        s.commit()
    assert all(a.story_id is not None for a in arts)


def _two_stories(engine: Engine) -> tuple[Session, StoryIndex, list[Article], np.ndarray]:
    recs = [BY_ID["kessana-strike-en-01"], BY_ID["kessana-strike-es-01"], BY_ID["kessana-strike-fr-01"],
            BY_ID["kessana-strike-pt-01"]]
    vecs = _vectors(recs)
    s = Session(engine, expire_on_commit=False)
    idx = StoryIndex()
    arts = [_ingest(s, idx, recs[0], vecs[0]), _ingest(s, idx, recs[1], vecs[1])]
    s.commit()
    assert arts[0].story_id == arts[1].story_id  # English and Spanish report: one story
    return s, idx, arts, vecs


def test_a_split_is_kept_when_later_reports_arrive(engine: Engine) -> None:
    s, idx, (en, es), vecs = _two_stories(engine)
    with s:
        old = en.story_id or 0
        new = split_article(s, old, es.id or 0)
        s.commit()
        assert s.get(StoryApart, (min(old, new), max(old, new))) is not None
        # a French report of the strike joins one of them; a copy of the Spanish report joins its
        # story; neither brings the Spanish report back into the English story
        fr = _ingest(s, idx, BY_ID["kessana-strike-fr-01"], vecs[2])
        copy = dict(BY_ID["kessana-strike-es-01"], outlet="Reprint", url="http://reprint.test/x",
                    text=BY_ID["kessana-strike-es-01"]["text"] + "\n\nFuente: agencias.")
        cp = _ingest(s, idx, copy, vecs[1])
        s.commit()
        s.refresh(en)
        s.refresh(es)
        assert en.story_id == old and es.story_id == new
        assert cp.story_id == new
        assert fr.story_id in (old, new)
        with pytest.raises(ValueError):
            split_article(s, new, en.id or 0)  # not in that story


def test_a_report_close_to_two_stories_of_its_event_makes_them_one(engine: Engine) -> None:
    """One event can become two stories when its reports arrive out of order, each too far
    from the other in meaning (here their vectors are made orthogonal). A later report that is
    close enough to both, with their names, bridges them: one story, the oldest, as a copy
    bridging two stories does; it alerted once, it stays one."""
    dim = len(_vectors([BY_ID["seed-en-01"]])[0])
    e1, e2 = np.zeros(dim, dtype=np.float32), np.zeros(dim, dtype=np.float32)
    e1[0], e2[1] = 1.0, 1.0
    idx = StoryIndex()
    with Session(engine, expire_on_commit=False) as s:
        a = _ingest(s, idx, BY_ID["seed-en-01"], e1)
        b = _ingest(s, idx, BY_ID["seed-ru-01"], e2)
        assert a.story_id != b.story_id  # the names are shared, the meaning (made so) is not
        assert claim_alert(s, a, "kz", [], None, new_story=True) == []
        s.commit()
        c = _ingest(s, idx, BY_ID["seed-de-02"], (e1 + e2) / np.sqrt(2))  # cosine 0.71 with each
        s.commit()
        for art in (a, b, c):
            s.refresh(art)
        assert a.story_id == b.story_id == c.story_id == min(a.story_id or 0, b.story_id or 0)
        assert [(r.story_id, r.rule) for r in s.exec(select(StoryAlert)).all()] == [(a.story_id, "kz")]


def test_a_merge_moves_the_alert_bookkeeping_so_the_story_alerts_once(engine: Engine) -> None:
    s, idx, (en, es), vecs = _two_stories(engine)
    with s:
        a = en.story_id or 0
        b = split_article(s, a, es.id or 0)
        assert claim_alert(s, es, "strike", [], None, new_story=True) == []  # story b alerted for the rule
        s.commit()
        merge_stories(s, a, b)
        s.commit()
        s.refresh(es)
        assert es.story_id == a
        assert [(r.story_id, r.rule) for r in s.exec(select(StoryAlert)).all()] == [(a, "strike")]
        assert s.exec(select(StoryApart)).all() == []  # the person's merge undoes their split
        fr = _ingest(s, idx, BY_ID["kessana-strike-fr-01"], vecs[2])
        assert fr.story_id == a
        assert claim_alert(s, fr, "strike", [], None, new_story=False) is None  # once per story and rule
        names = also_reported_by(s, fr.id or 0)
        assert any("(en)" in n for n in names) and any("(es)" in n for n in names), names


def test_monitor_stories_lists_languages_and_merge_split_work_from_the_cli(engine: Engine, tmp_path: Path) -> None:
    recs = [BY_ID[i] for i in ("veldora-rate-de-01", "veldora-rate-en-01", "veldora-rate-fr-01")]
    _replay(engine, recs)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "{engine.url.render_as_string(hide_password=False)}"\n', encoding="utf-8")
    res = run_monitor(cfg, "stories", "--json")
    assert res.returncode == 0, res.stderr
    (story,) = json.loads(res.stdout)
    assert story["headline"] == recs[0]["title"] and story["language"] == "de"
    assert story["headline_en"] == recs[1]["title"]
    assert [(o["name"], o["languages"]) for o in story["outlets"]] == [(r["outlet"], [r["language"]]) for r in recs]
    assert story["articles"] == 3 and story["alerts_sent"] == 0
    res = run_monitor(cfg, "stories", "split", str(story["id"]), str(story["article_ids"][2]))
    assert res.returncode == 0, res.stderr
    listed = json.loads(run_monitor(cfg, "stories", "--json").stdout)
    assert sorted(it["articles"] for it in listed) == [1, 2]
    other = next(it["id"] for it in listed if it["id"] != story["id"])
    res = run_monitor(cfg, "stories", "merge", str(story["id"]), str(other))
    assert res.returncode == 0, res.stderr
    assert [it["articles"] for it in json.loads(run_monitor(cfg, "stories", "--json").stdout)] == [3]
    res = run_monitor(cfg, "stories", "merge", str(story["id"]), "999")
    assert res.returncode != 0 and "no story 999" in res.stderr


# -- several instances on one PostgreSQL -----------------------------------------------------

@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    e = create_db_engine(pg_url)
    upgrade(e)
    yield e
    e.dispose()


def _race(e: Engine, idx: StoryIndex, first: dict[str, Any], second: dict[str, Any], vecs: np.ndarray,
          expect_wait: bool) -> tuple[int, int]:
    """Instance 1 assigns its report and holds its transaction open while instance 2 assigns the other."""
    hold, assigned = threading.Event(), threading.Event()
    out: dict[str, int] = {}

    def ingest(name: str, r: dict[str, Any], v: np.ndarray, wait: bool) -> None:
        with Session(e, expire_on_commit=False) as s:
            art = _ingest(s, idx, r, v)
            if wait:
                assigned.set()
                hold.wait(30)
            s.commit()
            out[name] = art.story_id or 0

    with Session(e) as s:  # the outlets exist already (as they do in a running deployment)
        _source(s, first["outlet"])
        _source(s, second["outlet"])
        s.commit()
    t1 = threading.Thread(target=ingest, args=("a", first, vecs[0], True))
    t1.start()
    assert assigned.wait(30)
    t2 = threading.Thread(target=ingest, args=("b", second, vecs[1], False))
    t2.start()
    if expect_wait:
        assert _waiting_on_lock(e), "instance 2 should wait for instance 1's claim on the event's names"
    else:
        t2.join(30)
    hold.set()
    t1.join(30)
    t2.join(30)
    return out["a"], out["b"]


def test_two_instances_ingesting_two_reports_of_one_event_at_once_form_one_story(
        pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = BY_ID["veldora-rate-en-01"], BY_ID["veldora-rate-fr-01"]  # a translation: no shared trigrams
    vecs = _vectors([first, second])
    idx = StoryIndex()
    a, b = _race(pg_engine, idx, first, second, vecs, expect_wait=True)
    assert a == b
    with Session(pg_engine) as s:
        assert s.execute(text("SELECT count(*) FROM dedup_claim")).scalar_one() == 0

    # Without the claim, the second transaction cannot see the first: the event splits in two.
    with Session(pg_engine) as s:
        s.execute(text("DELETE FROM story_event_key"))
        s.execute(text("DELETE FROM story_event"))
        s.execute(text("DELETE FROM dedup_sig"))  # nor as copies of the first round's articles
        s.execute(text("UPDATE article SET guid = guid || '-old', url = url || '-old', content_hash = NULL"))
        s.commit()
    monkeypatch.setattr(StoryIndex, "_claim", staticmethod(lambda session, keys: None))
    monkeypatch.setattr(StoryIndex, "_release", staticmethod(lambda session, keys: None))
    a, b = _race(pg_engine, idx, first, second, vecs, expect_wait=False)
    assert a != b


def test_event_index_entries_older_than_the_window_are_pruned(engine: Engine) -> None:
    recs = [BY_ID["veldora-rate-en-01"], BY_ID["kessana-strike-en-01"]]  # October, then November
    _replay(engine, recs)
    with Session(engine) as s:
        before = s.execute(text("SELECT count(*) FROM story_event_key")).scalar_one()
        assert before > 0
        cut = int(datetime.fromisoformat(recs[1]["published"]).timestamp())
        n = sum(StoryIndex.prune_events(s, c, cut, chunks=4) for c in range(4))
        s.commit()
        left = s.execute(text("SELECT count(*) FROM story_event_key")).scalar_one()
        assert n > 0 and 0 < left < before  # the older report's entries went, the newer's stayed
        assert s.execute(text("SELECT count(*) FROM story_event")).scalar_one() == 1
