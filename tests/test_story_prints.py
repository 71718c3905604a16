"""Story prints computed with the page, in the extraction worker (``monitor.pagework``), give the
same stories as the main process computing them: the same paragraph keys, shingles, bands,
content hashes, boilerplate, stories and scores, whichever boilerplate the database knows."""

from __future__ import annotations

import asyncio
import pickle
import random
from array import array
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from bench.syndicate import build, load_ground_truth
from monitor import pagework
from monitor.config import SourceConfig
from monitor.extract import Extracted
from monitor.extract import pool as extract_pool
from monitor.ingest import Ingest, new_article
from monitor.match import RuleSet
from monitor.parse import FeedEntry
from monitor.store import Source, create_db_engine, upgrade
from monitor.story import content_hash
from monitor.story.near import _TOKEN, shingles, tokens
from monitor.story.prints import body_shingles, key, paragraph_prints, text_prints
from monitor.story.result import TextPrints
from monitor.story.stories import StoryIndex, _body_shingles, _paragraphs

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "dedup"
WHEN = datetime(2025, 9, 24, 8, 0, tzinfo=UTC)


def _reference(text: str, title: str, dropped: set[int]) -> tuple[set[int], int]:
    """What the shingles mean: those of the kept paragraphs' words run together (no paragraph
    dropped when that would leave none), written out plainly."""
    paras = [" ".join(tokens(p)) for p in text.split("\n")]
    paras = [p for p in paras if p]
    head = " ".join(tokens(title))
    kept = [p for p in paras if key(p) not in dropped and p != head] or paras
    words = " ".join(kept).split(" ") if kept else []
    return shingles(words), len(words)


def _corpus() -> list[tuple[str, str, str]]:
    """(outlet, title, text) of syndicated copies wrapped in each outlet's byline and footer (the
    boilerplate the index learns), some with the headline as their first paragraph, and the
    originals."""
    corpus = build(load_ground_truth(FIXTURE), variants=3, seed=11)
    outlets = {o.name: o for o in corpus.outlets}
    out = []
    for n, item in enumerate(corpus.items):
        paras = list(item.paragraphs or [])
        if item.outlet in outlets:
            o = outlets[item.outlet]
            paras = [o.byline, *paras, *o.footer]
        if n % 3 == 0:
            paras.insert(0, item.title)
        out.append((item.outlet, item.title, "\n".join(paras)))
    return out


EDGE_TEXTS = [
    "", "One", "One two", "One two\nthree", "a\nb\nc\nd", "Headline here\nBody one two three four five",
    "Один два три четыре\n\nпять шесть семь восемь девять", "東京で会議が開かれた\n北京",
    "Short\nA longer paragraph with many words in it\nx y\nAnother long one with words\nEnd",
    "Same para\nSame para\nSame para", "  \n\n  punctuation! only? yes.\n...",
]


def test_body_shingles_are_those_of_the_kept_words_run_together() -> None:
    rng = random.Random(3)
    texts = [(t, text) for _, t, text in _corpus()] + [("Headline here", t) for t in EDGE_TEXTS]
    checked = 0
    for title, body in texts:
        par = paragraph_prints(body)
        keys = list(par.keys)
        drops: list[set[int]] = [set(), set(keys), {key("nothing of it")}]
        drops += [{k} for k in keys[:4]] + [set(rng.sample(keys, rng.randint(0, len(keys)))) for _ in range(4)]
        for dropped in drops:
            for t in (title, "", "Same para", "x y"):
                sh, n = body_shingles(par, t, dropped)
                assert (set(sh), n) == _reference(body, t, dropped), (body[:80], t, dropped)
                assert len(sh) == len(set(sh))  # distinct values: verify() relies on it
                checked += 1
    assert checked > 2000


# Characters where normalising or splitting words could differ between a paragraph and the whole
# text: combining marks (after a line break too), Hangul jamo that compose, compatibility forms
# that become letters of scripts written without spaces (halfwidth katakana, Kangxi radicals,
# squared words), ligatures, case folding that grows (ß, İ), other line separators, digits,
# underscores and punctuation.
_TRICKY = ["\u0301", "\u0345", "e\u0301", "\u1100", "\u1161", "\u11a8", "\ufb01", "\u216b", "\u2f00", "\uff76",
           "\uff9e", "\u3300", "\u6771", "\u0e01", "\uac00", "_", "9", "\u0130", "\u00df", "\u03a3", "\u03c2",
           "\u2028", "\r", " ", ".", "-", "a", "\u00c9", "\u00bd", "\u2460", "\uff21", "\n", "\n", "\n"]


def test_the_prints_content_hash_and_words_are_those_of_the_text() -> None:
    """text_prints takes the content hash from the paragraphs' words, and ``tokens`` finds a
    text's words with a simpler pattern where it can: the same hash as ``content_hash`` of the
    text, the same words as the full pattern, on the corpus and on random strings of characters
    where a paragraph and the whole text could be normalised or split differently."""
    import unicodedata

    rng = random.Random(5)
    texts = [text for _, _, text in _corpus()] + EDGE_TEXTS
    texts += ["".join(rng.choice(_TRICKY) for _ in range(rng.randint(1, 40))) for _ in range(4000)]
    spaceless = 0
    for t in texts:
        assert text_prints("A title", t).content_hash == (content_hash(t) if t else None), repr(t)
        for p in t.split("\n"):
            assert tokens(p) == _TOKEN.findall(unicodedata.normalize("NFKC", p).casefold()), repr(p)
        spaceless += any(len(w) == 1 and _TOKEN.fullmatch(w) and not w.isascii() for w in tokens(t))
    assert spaceless > 500  # the random strings reach the full pattern's side too


def _engine(path: Path) -> Engine:
    e = create_db_engine(f"sqlite:///{path}")
    upgrade(e)
    return e


def _ingest(e: Engine, corpus: list[tuple[str, str, str]], prints: str) -> list[tuple[Any, ...]]:
    """Every article of the corpus through the ingest chain; ``prints``: "worker" (computed
    beside, pickled as the pool returns them), "other-title" (computed for another headline, so
    the main process cannot use their bands) or "main" (none)."""
    _paragraphs.cache_clear()  # nothing the other run computed
    _body_shingles.cache_clear()
    ingest = Ingest(RuleSet([("any", "the")]), StoryIndex(events=True), realert={}, channels={})
    out: list[tuple[Any, ...]] = []
    with Session(e) as s:
        sources: dict[str, Source] = {}
        for n, (outlet, title, body) in enumerate(corpus):
            if outlet not in sources:
                sources[outlet] = Source(name=outlet, url=f"http://{len(sources)}.test/feed")
                s.add(sources[outlet])
                s.flush()
            src = sources[outlet]
            ex = Extracted(title=title, text=body, published=WHEN + timedelta(minutes=n), authors=None,
                           language="en", canonical_url=None)
            tp: TextPrints | None = None
            if prints != "main":
                tp = pickle.loads(pickle.dumps(text_prints(title if prints == "worker" else "", body, events=True)))
                ex = replace(ex, text=tp.text)  # as unpickled: one object
            entry = FeedEntry(guid=str(n), url=f"http://{outlet.replace(' ', '-')}.test/{n}", title=title,
                              content_html="", published=WHEN + timedelta(minutes=n))
            art = new_article(src.id or 0, SourceConfig(name=outlet, url=src.url), entry, ex, None, prints=tp)
            done = ingest.run(s, art, src, prints=tp)
            st = done.story
            out.append((art.content_hash, st.story_id, st.new_story, st.duplicate_of, st.similar_to, st.score))
        s.commit()
        for table, order in (("dedup_band", "article_id, band"), ("dedup_boilerplate", "source_id, paragraph"),
                             ("story_event", "article_id"), ("story_event_key", "article_id, key")):
            out.append((table, s.execute(text(f"SELECT * FROM {table} ORDER BY {order}")).all()))  # noqa: S608
    return out


def test_stories_are_the_same_with_prints_from_the_worker_or_computed_here(tmp_path: Path) -> None:
    corpus = _corpus()
    runs = {}
    for how in ("worker", "other-title", "main"):
        e = _engine(tmp_path / f"{how}.db")
        try:
            runs[how] = _ingest(e, corpus, how)
        finally:
            e.dispose()
    arts, tables = runs["main"][:len(corpus)], dict(runs["main"][len(corpus):])
    # the test can fail: copies joined stories, boilerplate was learnt (and dropped), events stored
    assert len({a[1] for a in arts}) < 0.6 * len(corpus) and any(a[5] for a in arts)
    assert tables["dedup_boilerplate"] and tables["story_event_key"]
    assert [a[0] for a in arts] == [content_hash(b) if b else None for _, _, b in corpus]
    assert runs["worker"] == runs["main"]
    assert runs["other-title"] == runs["main"]


@pytest.fixture
def fresh_pool() -> Iterator[None]:
    extract_pool.shutdown()
    yield
    extract_pool.shutdown()


PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Kazakhstan offers a venue</title>
</head><body><main><article><h1>Kazakhstan offers a venue</h1>
<p>Kazakhstan is ready to be a venue for negotiations between Russia and Ukraine, President Kassym-Jomart Tokayev said on Tuesday in Astana.</p>
<p>"We are ready to provide our platform," Tokayev told reporters after meeting the Turkish foreign minister, adding that both sides knew it.</p>
<p>Follow us for more news every day. All rights reserved.</p>
</article></main></body></html>"""


def test_the_extraction_worker_hands_back_what_the_main_process_would_compute(fresh_pool: None) -> None:
    link = "http://kz.test/a?utm_source=feed"
    page = asyncio.run(pagework.extract(PAGE.encode(), "http://kz.test/a", "text/html; charset=utf-8", None, link,
                                        "Kazakhstan offers a venue", True))
    assert page is not None and "venue for negotiations" in page.extracted.text
    here = text_prints("Kazakhstan offers a venue", page.extracted.text, events=True)
    assert page.prints == here and page.prints.signature is not None and page.prints.bands
    assert page.prints.text is page.extracted.text  # the text crossed once, not twice
    entry = FeedEntry(guid="a", url=link, title="Kazakhstan offers a venue", content_html="", published=WHEN)
    sc = SourceConfig(name="KZ", url="http://kz.test/feed")
    art = new_article(1, sc, entry, page.extracted, None, now=WHEN, prints=page.prints, url=page.url)
    alone = new_article(1, sc, entry, page.extracted, None, now=WHEN)
    assert art.url == alone.url == "http://kz.test/a" and art.content_hash == alone.content_hash
    # no feed title: the page's own headline is assumed
    page = asyncio.run(pagework.extract(PAGE.encode(), "http://kz.test/a", "text/html; charset=utf-8", None, link,
                                        None, False))
    assert page is not None and page.prints.title == page.extracted.title and page.prints.signature is None


def test_minhash_permutations_are_datasketchs_without_numpy_random() -> None:
    """The stored band keys depend on them: the draws of NumPy's legacy RandomState(seed), as
    datasketch made them, from the standard library's generator."""
    import numpy as np

    from monitor.story.near import _SEED, NUM_PERM, _perms

    gen = np.random.RandomState(_SEED)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    mine = _perms()
    assert mine[0].dtype == mine[1].dtype == np.uint32
    assert mine[0].tolist() == a.tolist() and mine[1].tolist() == b.tolist()


UNTITLED = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body><main><article>
<p>Kazakhstan is ready to be a venue for negotiations between Russia and Ukraine, President Kassym-Jomart Tokayev said on Tuesday in Astana.</p>
<p>"We are ready to provide our platform," Tokayev told reporters after meeting the Turkish foreign minister, adding that both sides knew it.</p>
<p>The talks could begin as soon as next month, officials in Astana said, if both delegations agree on an agenda first.</p>
</article></main></body></html>"""


@pytest.mark.parametrize("headline", ["Kazakhstan offers a venue", None])
def test_the_main_process_takes_the_workers_prints_of_a_titled_or_untitled_article(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, headline: str | None) -> None:
    """An entry with no title, of a page with none, is stored under its URL: the worker's prints
    are made for that headline, so the main process does not make them again."""
    link = "http://kz.test/untitled?utm_source=feed"
    page = pagework.work(UNTITLED.encode(), "http://kz.test/untitled", "text/html; charset=utf-8", None, link,
                         headline, True)
    assert page is not None and page.extracted.title is None
    entry = FeedEntry(guid="u", url=link, title=headline or "", content_html="", published=WHEN)
    sc = SourceConfig(name="KZ", url="http://kz.test/feed")
    art = new_article(1, sc, entry, page.extracted, None, now=WHEN, prints=page.prints, url=page.url)
    assert art.title == (headline or "http://kz.test/untitled")
    from monitor.story import stories

    made: list[str] = []

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            made.append(name)
            return real(*args, **kwargs)
        return call

    for name in ("body_shingles", "bands_of", "signature"):
        monkeypatch.setattr(stories, name, counted(name, getattr(stories, name)))
    monkeypatch.setattr(_paragraphs, "_compute", counted("paragraph_prints", paragraph_prints))
    _paragraphs.cache_clear()
    _body_shingles.cache_clear()
    e = _engine(tmp_path / "kz.db")
    try:
        with Session(e) as s:
            src = Source(name="KZ", url=sc.url)
            s.add(src)
            s.flush()
            art.source_id = src.id or 0
            done = Ingest(RuleSet([("any", "the")]), StoryIndex(events=True), realert={}, channels={}).run(
                s, art, src, prints=page.prints)
            s.commit()
    finally:
        e.dispose()
    assert done.story.new_story and made == []


def test_bands_of_a_shingle_array_are_those_of_the_set_and_read_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """The band keys of ``body_shingles``' array, read as it is, are those of the same shingles
    as a set and of the signature written out plainly (each shingle under each permutation, the
    least); text_prints hands the array itself to minhash, not a set copied from it."""
    import numpy as np

    from monitor.story import near, prints

    rng = random.Random(3)
    for n in (0, 1, 2, 5, 700, 3000):
        hashes = array("I", rng.sample(range(1 << 32), n))
        a, b = near._perms()
        want: tuple[int, ...] = ()
        if n:
            with np.errstate(over="ignore"):
                want = tuple(near.band_keys((near._fmix32(np.array(hashes, dtype=np.uint32))[:, None] * a + b).min(axis=0)))
        assert prints.bands_of(hashes) == prints.bands_of(frozenset(hashes)) == want
    given: list[Any] = []
    real = prints.minhash

    def minhash(sh: Any) -> Any:
        given.append(sh)
        return real(sh)

    monkeypatch.setattr(prints, "minhash", minhash)
    made = prints.text_prints("Talks resume", "The foreign minister said the talks would resume next week.")
    assert made.bands and len(given) == 1 and isinstance(given[0], np.ndarray)
    assert given[0].base is not None and given[0].tolist() == list(made.shingles)
