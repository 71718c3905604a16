"""Stories: every article joins the story it is a copy of, or starts a new one.

The caller (``monitor.ingest``) owns the transaction: ``StoryIndex.place`` finds exact and near
duplicates among the articles of the last ``window`` seconds and decides the article's story
before the article is stored (its row is then written once, with the story); ``record`` stores
its LSH bands once it has an id, all in that same transaction. (``assign`` does both for an
article already flushed.) The alert gate (``monitor.alerts.gate``) asks ``new_statements`` what a story does
not carry yet.
"""

from __future__ import annotations

import json
import logging
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Generic, TypeVar

import numpy as np
from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Integer,
    Select,
    TextualSelect,
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    null,
    or_,
    text,
    union_all,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from monitor.config import DedupSettings
from monitor.embed import MODEL_NAME, unpack
from monitor.embed.check import UNDERSTOOD_LANGUAGES
from monitor.store import driver
from monitor.store.models import (
    Article,
    DedupBand,
    DedupBoilerplate,
    Feedback,
    Story,
    StoryAlert,
    StoryApart,
    StoryEvent,
    StoryEventKey,
)
from monitor.story.events import Report, Signature, Verdict, decide, signature
from monitor.story.near import Fingerprint, shingles, tokens, verify
from monitor.story.prints import bands_of, body_shingles, paragraph_prints
from monitor.story.prints import key as _key
from monitor.story.result import Paragraphs, TextPrints

log = logging.getLogger(__name__)
V = TypeVar("V")

# The hot statements, written once: building them with the ORM on every article cost more than
# running them. Those that return rows are Core constructs: SQLAlchemy keeps their result
# columns with the compiled statement, where a text() SELECT's are worked out again from the
# cursor on every execution (~10 us a statement, issue 15).
_A = Article.__table__  # type: ignore[attr-defined]
_RECENT = (core_select(_A.c.text).where(_A.c.source_id == bindparam("src"), _A.c.id != bindparam("me"),
                                        _A.c.first_seen_at >= bindparam("since"))
           .order_by(_A.c.id.desc()).limit(bindparam("n")))


# Lists go in as one parameter, a JSON array on SQLite (json_each) and an array on PostgreSQL,
# not as an expanding IN: one statement text, no per-execution rewrite, no parameter per item.
def _json_values(name: str) -> Select[Any]:
    """SQLite: the values of the JSON array bound as ``name``."""
    return core_select(func.json_each(bindparam(name)).table_valued("value").c.value)


def _pg_values(name: str, of: type[Integer]) -> Any:
    """PostgreSQL: the values of the array bound as ``name`` (compare with ``== _pg_values()``)."""
    return any_(cast(bindparam(name), ARRAY(of)))


_BP = DedupBoilerplate.__table__  # type: ignore[attr-defined]
# Which of these outlets' paragraph keys are known boilerplate: the same statement on both
# databases but for how the two lists are bound.
_BOILERPLATE, _PG_BOILERPLATE = (
    core_select(_BP.c.source_id, _BP.c.paragraph).where(*where) for where in (
        (_BP.c.source_id.in_(_json_values("srcs")), _BP.c.paragraph.in_(_json_values("keys"))),
        (_BP.c.source_id == _pg_values("srcs", Integer), _BP.c.paragraph == _pg_values("keys", BigInteger))))
# Both what ``learn_boilerplate`` reads, in one statement: the outlet's recent texts (paragraph
# NULL) and which of the article's paragraph keys are known as its boilerplate (text NULL).
_R = _RECENT.subquery("r")
_RECENT_AND_KNOWN, _PG_RECENT_AND_KNOWN = (
    union_all(core_select(_R.c.text, null().label("paragraph")),
              core_select(null(), _BP.c.paragraph).where(_BP.c.source_id == bindparam("src"), keys))
    for keys in (_BP.c.paragraph.in_(_json_values("keys")),
                 _BP.c.paragraph == _pg_values("keys", BigInteger)))
# SQLite: the candidates and their rows in one statement: the articles sharing the most bands
# (at most :top, an index search per band), then those inside the window, by id.
_DB = DedupBand.__table__  # type: ignore[attr-defined]
_SHARING = (core_select(_DB.c.article_id).where(_DB.c.band.in_(_json_values("bands")), _DB.c.article_id != bindparam("me"))
            .group_by(_DB.c.article_id).order_by(func.count().desc(), _DB.c.article_id).limit(bindparam("top"))
            .subquery("c"))
_CANDIDATE = (_A.c.id, _A.c.source_id, _A.c.text, _A.c.story_id, _A.c.title)  # a ``CandidateRow``
_CANDIDATE_ROWS = (core_select(*_CANDIDATE)
                   .join_from(_SHARING, _A, _A.c.id == _SHARING.c.article_id)
                   .where(_A.c.first_seen_at >= bindparam("since")).subquery("r"))
_EXACT = (core_select(_A.c.id, _A.c.story_id).where(_A.c.content_hash == bindparam("h"), _A.c.id != bindparam("me"))
          .order_by(_A.c.id).limit(1))
# SQLite: the exact copy (the row with ``exact`` 1, if any) and the candidates, in one statement.
_X = _EXACT.subquery("x")
_COPIES = union_all(
    core_select(literal_column("1").label("exact"), _X.c.id, null().label("source_id"), null().label("text"),
                _X.c.story_id, null().label("title")),
    core_select(literal_column("0"), _CANDIDATE_ROWS.c.id, _CANDIDATE_ROWS.c.source_id, _CANDIDATE_ROWS.c.text,
                _CANDIDATE_ROWS.c.story_id, _CANDIDATE_ROWS.c.title),
).order_by(literal_column("exact").desc(), literal_column("id"))
CandidateRow = tuple[int, int, str, int | None, str]  # id, source, text, story, title
_PG_CANDIDATES = text(  # the GIN index is on the keys cut to 22 bits; the full keys are rechecked
    "SELECT article_id, bands FROM dedup_sig WHERE dedup_lsh_keys(bands) && dedup_lsh_keys(CAST(:q AS integer[])) "
    "AND bands && CAST(:q AS integer[]) AND article_id <> :me")
# One statement, both backends (SQLite >= 3.24): the dialects' insert().on_conflict_do_nothing()
# with one VALUES row per paragraph was compiled anew for every count of rows.
_LEARN = text("INSERT INTO dedup_boilerplate (source_id, paragraph) VALUES (:src, :p) ON CONFLICT DO NOTHING")
_SA = StoryApart.__table__  # type: ignore[attr-defined]
_APART = core_select(_SA.c.story_id, _SA.c.other_id).where(or_(_SA.c.story_id == bindparam("s"), _SA.c.other_id == bindparam("s")))
# PostgreSQL: the candidates' rows inside the window, by id.
_FETCH = (core_select(*_CANDIDATE).where(_A.c.id == _pg_values("ids", Integer), _A.c.first_seen_at >= bindparam("since"))
          .order_by(_A.c.id))
_ST = Story.__table__  # type: ignore[attr-defined]
_NEW_STORY = insert(_ST).values(title=bindparam("title"), created_at=bindparam("created_at")).returning(_ST.c.id)
_SET_STORY = text("UPDATE article SET story_id = :s, duplicate_of = :d WHERE id = :id")
_BANDS = text("INSERT INTO dedup_band (band, article_id) SELECT value, :a FROM json_each(:b)")
_PG_BANDS = text("INSERT INTO dedup_sig (article_id, bands) VALUES (:a, CAST(:b AS integer[]))")
_EVENT = text("INSERT INTO story_event (article_id, at, sig) VALUES (:a, :at, :sig)")
_PG_EVENT = text("INSERT INTO story_event (article_id, at, sig) VALUES (:a, :at, CAST(:sig AS json))")
_EVENT_KEYS = text("INSERT INTO story_event_key (key, at, article_id) VALUES (:k, :at, :a)")
_PG_EVENT_KEYS = text("INSERT INTO story_event_key (key, at, article_id) SELECT unnest(CAST(:k AS integer[])), :at, :a")
_PG_PLANNER = text("SET LOCAL enable_seqscan = off; SET LOCAL max_parallel_workers_per_gather = 0")
_PG_CLAIM = text("INSERT INTO dedup_claim (key) SELECT unnest(CAST(:k AS bigint[])) ON CONFLICT DO NOTHING")
_PG_RELEASE = text("DELETE FROM dedup_claim WHERE key = ANY(CAST(:k AS bigint[]))")

# Event candidates: for each lead name or figure of the new article, the most recent entries of
# the window under that key (an index range scan), then the reports sharing the most keys.
_EVENT_PER_KEY = 100
_EVENT_CANDIDATES = 30
# An article without names (a caseless script) is compared with this many of the window's
# newest reports: 200 vectors, ~200 KB read and one matrix product (~1-3 ms) per such article.
_EVENT_RECENT = 200
_RECENT_REPORTS = text(
    "SELECT e.article_id, a.story_id, e.sig, v.vector FROM (SELECT article_id, sig FROM story_event "
    "WHERE at >= :lo AND at <= :hi AND article_id <> :me ORDER BY at DESC LIMIT :n) AS e "
    "JOIN article a ON a.id = e.article_id "
    "JOIN article_vector v ON v.article_id = e.article_id AND v.model = :model").columns(sig=JSON)


@lru_cache(maxsize=64)
def _event_reports_sql(n: int) -> TextualSelect:
    """One statement (one round trip): the candidates sharing most of the ``n`` keys, each with
    its story, names and vector."""
    one = ("SELECT article_id FROM (SELECT article_id FROM story_event_key WHERE key = :k{i} AND at >= :lo "
           "AND at <= :hi ORDER BY at DESC LIMIT :per) AS q{i}")
    return text(
        "SELECT e.article_id, a.story_id, e.sig, v.vector FROM (SELECT article_id, count(*) AS c FROM ("
        + " UNION ALL ".join(one.format(i=i) for i in range(n))
        + ") AS u WHERE article_id <> :me GROUP BY article_id ORDER BY c DESC, article_id DESC LIMIT :top) AS c "
        "JOIN story_event e ON e.article_id = c.article_id JOIN article a ON a.id = c.article_id "
        "JOIN article_vector v ON v.article_id = c.article_id AND v.model = :model").columns(sig=JSON)


RECENT_SAME_SOURCE = 10  # articles of the same outlet looked at to learn its boilerplate
MAX_CANDIDATES = 20
BOILERPLATE_SHARE = 0.4  # a shared paragraph set larger than this share of the article is a copy
PRUNE_EVERY = 500  # every this many articles, one slice of the band index is pruned ...
PRUNE_CHUNKS = 256  # ... of this many: the whole index is swept every 128,000 articles


@dataclass(frozen=True)
class Assignment:
    story_id: int
    new_story: bool
    duplicate_of: int | None = None  # exact copy (same normalised body) of that article
    similar_to: int | None = None  # verified near-duplicate, or the closest report of the same event
    score: float = 0.0
    same_event: bool = False  # joined by the event decision (a translation or rewrite), not as a copy
    merged: tuple[int, ...] = ()  # stories this article showed to be its story's event, merged into it


@dataclass(frozen=True)
class Placed:
    """``StoryIndex.place``'s decision, and what ``record`` stores once the article has its id."""

    story: Assignment
    bands: Sequence[int]
    at: int  # publication time, epoch seconds
    sig: Signature
    event_keys: list[int]
    claims: list[int]  # PostgreSQL's dedup_claim keys, held until ``record``
    since: datetime  # the window's start
    now: datetime


def _epoch(dt: datetime) -> int:
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())


class _Memo(Generic[V]):
    """A bounded memo of a function, least recently used out (as ``functools.lru_cache``), that
    can also be handed a value computed elsewhere (``put``): the extraction worker's prints of
    the article being placed go in, and later articles find them here too.

    Not thread-safe, unlike ``lru_cache`` (a lookup and its reordering are two steps): only
    ``StoryIndex``'s placing reaches it, which runs on the process's one ingest thread
    (``monitor.pipeline._INGEST_POOL``, one worker, whatever the number of pipelines); the
    analysts' merge and split on the console's threads do not use it. A second thread placing
    articles would need a lock here."""

    def __init__(self, compute: Callable[..., V], maxsize: int) -> None:
        self._compute, self._maxsize = compute, maxsize
        self._memo: OrderedDict[tuple[Hashable, ...], V] = OrderedDict()

    def __call__(self, *key: Hashable) -> V:
        memo = self._memo
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
        value = self._compute(*key)
        self.put(key, value)
        return value

    def put(self, key: tuple[Hashable, ...], value: V) -> None:
        self._memo[key] = value
        self._memo.move_to_end(key)
        if len(self._memo) > self._maxsize:
            self._memo.popitem(last=False)

    def cache_clear(self) -> None:
        self._memo.clear()


# ``prints.paragraph_prints`` of a text. Kept: a text is looked at several times (an outlet's
# recent articles with each of its new ones, a story's articles as each other's candidates);
# ~4 KB a text.
_paragraphs: _Memo[Paragraphs] = _Memo(paragraph_prints, 512)
# ``prints.body_shingles`` of (text, title, dropped paragraph keys). Kept: the articles of a
# story are each other's candidates, so one body is verified against every later copy.
_body_shingles: _Memo[tuple[array[int], int]] = _Memo(
    lambda text, title, dropped: body_shingles(_paragraphs(text), title, dropped), 128)


def _dropped(source_id: int, text: str, boilerplate: set[tuple[int, int]]) -> frozenset[int]:
    """The keys of the text's paragraphs that are its outlet's known boilerplate."""
    return frozenset(k for k in _paragraphs(text).keys if (source_id, k) in boilerplate)


class StoryIndex:
    """Finds an article's story; the index itself is in the database (``dedup_band``)."""

    def __init__(self, window: float = DedupSettings.window, min_containment: float = DedupSettings.min_containment,
                 event_window: float = DedupSettings.event_window, events: bool = DedupSettings.events):
        """Defaults: those of ``[dedup]`` (declared once, in the config schema)."""
        self.window = window
        self.min_containment = min_containment
        self.event_window = event_window  # reports of one event are published within this of each other
        self.events = events  # False: copies only (the behaviour before event stories)

    # -- boilerplate ------------------------------------------------------------------------
    def learn_boilerplate(self, session: Session, article: Article, since: datetime) -> set[tuple[int, int]]:
        """Paragraphs this outlet also printed in other recent articles are its boilerplate.

        Unless they are most of the article: an outlet re-posting its own story is a copy.
        Returns the article's paragraphs known as its outlet's boilerplate (``known_boilerplate``),
        those just learned included: read with the recent articles, in the same statement.
        """
        par = _paragraphs(article.text)
        if len(par.keys) < 2:
            return self.known_boilerplate(session, [(article.source_id, article.text)])
        words = dict(zip(par.keys, par.counts, strict=True))
        total = sum(words.values()) or 1
        pg = self._pg(session)
        keys = sorted(words)
        conn = session.connection()
        recent: list[str] = []
        known: set[int] = set()
        for body, paragraph in driver.rows(conn, _PG_RECENT_AND_KNOWN if pg else _RECENT_AND_KNOWN, {
                "src": article.source_id, "me": article.id or 0, "since": since, "n": RECENT_SAME_SOURCE,
                "keys": keys if pg else json.dumps(keys)}):
            if paragraph is None:
                recent.append(body)
            else:
                known.add(int(paragraph))
        found: set[int] = set()
        for body in recent:
            shared = words.keys() & set(_paragraphs(body).keys)
            if shared and sum(words[k] for k in shared) <= BOILERPLATE_SHARE * total:
                found |= shared
        if found:
            driver.run_many(conn, _LEARN, [{"src": article.source_id, "p": k} for k in sorted(found)])
        return {(article.source_id, k) for k in known | found}

    @staticmethod
    def known_boilerplate(session: Session, texts: list[tuple[int, str]]) -> set[tuple[int, int]]:
        """(source, paragraph key) pairs among these (source, text) that are known boilerplate."""
        by_source: dict[int, set[int]] = {}
        for src, t in texts:
            by_source.setdefault(src, set()).update(_paragraphs(t).keys)
        keys = set().union(*by_source.values())
        if not keys:
            return set()
        srcs, conn = sorted(by_source), session.connection()
        if StoryIndex._pg(session):
            rows = driver.rows(conn, _PG_BOILERPLATE, {"srcs": srcs, "keys": sorted(keys)})
        else:
            rows = driver.rows(conn, _BOILERPLATE, {"srcs": json.dumps(srcs), "keys": json.dumps(sorted(keys))})
        # One statement for every outlet: a pair of one outlet's key with another's is dropped here.
        return {(int(src), int(k)) for src, k in rows if k in by_source[src]}

    @staticmethod
    def _shingles(source_id: int, text: str, title: str, boilerplate: set[tuple[int, int]]) -> tuple[array[int], int]:
        """(shingles, words) of the body without boilerplate and without the headline (outlets
        rewrite those): what a candidate is verified on."""
        return _body_shingles(text, title, _dropped(source_id, text, boilerplate))

    @classmethod
    def _fingerprint(cls, source_id: int, text: str, title: str, boilerplate: set[tuple[int, int]],
                     bands: Sequence[int] | None = None) -> Fingerprint:
        """``bands``: the worker's, those of the body with no paragraph dropped but the headline."""
        dropped = _dropped(source_id, text, boilerplate)
        sh, words = _body_shingles(text, title, dropped)
        shingle_set = frozenset(sh)
        return Fingerprint(shingle_set, tuple(bands) if bands is not None and not dropped else bands_of(shingle_set),
                           words)

    # -- the band index: rows on SQLite, one array per article with a GIN index on PostgreSQL --
    @staticmethod
    def _pg(session: Session) -> bool:
        return session.get_bind().dialect.name == "postgresql"

    def copies(self, session: Session, content_hash: str | None, fp: Fingerprint, since: datetime,
               exclude: int = 0) -> tuple[tuple[int, int | None] | None, list[CandidateRow]]:
        """(id, story) of the first article with this exact body (``content_hash``), and the
        near-copy candidates: (id, source, text, story, title) of the articles of the window
        among the ``MAX_CANDIDATES`` sharing the most LSH bands (most shared, then oldest), by id.
        On SQLite one statement answers both."""
        bands = sorted(set(fp.bands))
        conn = session.connection()
        if not self._pg(session):
            if not content_hash and not bands:
                return None, []
            exact = None
            rows: list[CandidateRow] = []
            for first, *row in driver.rows(conn, _COPIES, {"h": content_hash, "bands": json.dumps(bands), "me": exclude,
                                                           "top": MAX_CANDIDATES, "since": since}):
                if first:
                    exact = (row[0], row[3])
                else:
                    rows.append(tuple(row))
            return exact, rows
        dup = driver.run(conn, _EXACT, {"h": content_hash, "me": exclude})[1] if content_hash else None
        exact = None if dup is None else (dup[0], dup[1])
        if not bands:
            return exact, []
        # No join here: the planner's blind estimate for "&&" would make it hash-join the whole
        # article table. The window applies when candidates are fetched.
        found = driver.rows(conn, _PG_CANDIDATES, {"q": bands, "me": exclude})
        q = set(bands)
        cands = [a for _, a in sorted((-len(q.intersection(b)), int(a)) for a, b in found)[:MAX_CANDIDATES]]
        return exact, [tuple(r) for r in driver.rows(conn, _FETCH, {"ids": cands, "since": since})] if cands else []

    def _store_bands(self, session: Session, article_id: int, bands: Sequence[int]) -> None:
        if not bands:
            return
        if self._pg(session):
            driver.run(session.connection(), _PG_BANDS, {"a": article_id, "b": sorted(set(bands))})
        else:  # one statement, the keys as one JSON array (not an executemany of a row each)
            driver.run(session.connection(), _BANDS, {"a": article_id, "b": json.dumps(sorted(set(bands)))})

    # -- assignment -------------------------------------------------------------------------
    def assign(self, session: Session, article: Article, now: datetime | None = None,
               vector: np.ndarray | None = None) -> Assignment:
        """Put a flushed article into a story (joining, merging or creating one); store its bands.

        Ingest does the same in two steps around the article's insert (``place``, then
        ``record``), so that the row is written once, with its story."""
        assert article.id is not None
        placed = self.place(session, article, now, vector)
        session.connection().execute(_SET_STORY, {"id": article.id, "s": placed.story.story_id,
                                                  "d": placed.story.duplicate_of})
        for name, value in (("story_id", placed.story.story_id), ("duplicate_of", placed.story.duplicate_of)):
            set_committed_value(article, name, value)  # what the row holds now: no second UPDATE by a flush
        self.record(session, article.id, placed)
        return placed.story

    def place(self, session: Session, article: Article, now: datetime | None = None,
              vector: np.ndarray | None = None, prints: TextPrints | None = None) -> Placed:
        """The story of an article about to be stored (or flushed: it is left out of its own
        search): the story it joins, merging stories it bridges, or a new one. The caller stores
        the article with that story, then calls ``record`` in the same transaction.

        A copy joins the story of what it copies. Otherwise, with ``vector`` (the article's unit
        vector from ``monitor.embed``), the article joins the story of the same event if one is
        among the reports published within ``event_window`` (``monitor.story.events.decide``).

        ``prints``: what its extraction worker computed of its text (``monitor.story.prints``),
        taken instead of computing it again (the same either way); its paragraphs and shingles
        go into the memos, where later articles find them too.
        """
        if prints is not None and prints.text == article.text:
            _paragraphs.put((prints.text,), prints.paragraphs)
            _body_shingles.put((prints.text, prints.title, frozenset()), (prints.shingles, prints.words))
        # its bands and signature, when they are of its text and headline
        own = prints if prints is not None and (prints.text, prints.title) == (article.text, article.title) else None
        me = article.id or 0  # 0: no article has it
        now = now or datetime.now(UTC)
        since = now - timedelta(seconds=self.window)
        pg = self._pg(session)
        if pg:
            # The planner cannot estimate "bands && array" (no element statistics for unique
            # keys) and would scan the whole signature table. For the rest of this transaction:
            # everything it does after this point is an indexed lookup or an insert.
            # Nor start parallel workers for it: their start-up (several ms) costs more than the
            # few index pages each lookup reads.
            session.connection().execute(_PG_PLANNER)
        fp = self._fingerprint(article.source_id, article.text, article.title,
                               self.learn_boilerplate(session, article, since), own.bands if own else None)
        sig = Signature() if not self.events else (
            own.signature if own and own.signature is not None else signature(article.title, article.text))
        if self.events and article.language and article.language not in UNDERSTOOD_LANGUAGES:
            sig = replace(sig, blind=True)  # the names decide where its vector cannot (``decide``)
        event_keys = sig.index_keys()
        claims = sorted({*fp.bands, *([_key(article.content_hash) >> 32] if article.content_hash else []),
                         *(k + (1 << 40) for k in event_keys)})  # event keys in a range of their own
        self._claim(session, claims)  # from here on, a concurrent copy of this story waits for us
        duplicate_of: int | None = None
        merged: tuple[int, ...] = ()
        matched: dict[int, tuple[float, int]] = {}  # story -> (score, article)
        dup, rows = self.copies(session, article.content_hash, fp, since, exclude=me)
        if dup is not None:
            duplicate_of = dup[0]
            if dup[1] is not None:
                matched[dup[1]] = (1.0, dup[0])
            rows = [r for r in rows if r[0] != duplicate_of]
        if rows:
            known = self.known_boilerplate(session, [(r[1], r[2]) for r in rows])
            for cand, source_id, body, cand_story, title in rows:
                if cand_story is None:
                    continue
                score = verify(fp.shingles, self._shingles(source_id, body, title, known)[0])
                log.debug("article %s vs %s: containment %.3f", article.url, cand, score)
                if score >= self.min_containment and score > matched.get(cand_story, (0.0, 0))[0]:
                    matched[cand_story] = (score, cand)

        at = _epoch(article.published or article.first_seen_at or now)
        verdict = Verdict(None)
        similar: int | None
        query_keys = sig.query_keys()
        if not matched and vector is not None and (query_keys or sig.caseless):
            reports = self._event_reports(session, me, query_keys, at) if query_keys else []
            if sig.caseless:
                reports += self._recent_reports(session, me, at, {r.article_id for r in reports}, vector)
            verdict = decide(sig, vector, reports)
        if matched:
            story_id = min(matched)
            apart = self._apart(session, story_id)
            if apart & matched.keys():  # copies of both sides of an analyst's split: the closer side
                story_id = max(matched, key=lambda k: (matched[k][0], -k))
                apart = self._apart(session, story_id)
            score, similar = matched[story_id]
            merged = self._merge(session, story_id, [s for s in matched if s != story_id and s not in apart])
            new = False
        elif verdict.story_id is not None:
            story_id, score, similar, new = int(verdict.story_id), verdict.score, verdict.similar_to, False
            if verdict.also:
                # It reports the event of other stories too: one event that became several
                # stories (its reports arrived out of order); they become one, the oldest, as a
                # copy bridging two stories makes them one. Not stories an analyst split apart.
                apart = self._apart(session, story_id)
                others = [s for s in verdict.also if s not in apart]
                if others:
                    story_id = min([story_id, *others])
                    merged = self._merge(session, story_id,
                                         [s for s in [int(verdict.story_id), *others] if s != story_id])
            log.debug("article %s joins story %s: same event as article %s (%s)", article.url, story_id, similar,
                      verdict.why)
        else:
            new_row = driver.run(session.connection(), _NEW_STORY, {"title": article.title, "created_at": now})[1]
            assert new_row is not None
            story_id = int(new_row[0])
            score, similar, new = 0.0, None, True
        story = Assignment(story_id=story_id, new_story=new, duplicate_of=duplicate_of,
                           similar_to=similar if similar != duplicate_of else None, score=score,
                           same_event=verdict.story_id is not None, merged=merged)
        return Placed(story, fp.bands, at, sig, event_keys, claims, since, now)

    def record(self, session: Session, article_id: int, placed: Placed) -> None:
        """What the index keeps of a stored article placed by ``place``: its bands and event
        keys; then the claims are given back, and now and then a slice of the index is pruned."""
        self._store_bands(session, article_id, placed.bands)
        if self.events:
            self._store_event(session, article_id, placed.at, placed.sig, placed.event_keys)
        self._release(session, placed.claims)
        if article_id % PRUNE_EVERY == 0:
            chunk = (article_id // PRUNE_EVERY) % PRUNE_CHUNKS
            self.prune_chunk(session, chunk, placed.since)
            if self.events:
                self.prune_events(session, chunk, _epoch(placed.now) - int(2 * self.event_window))

    # -- events: names, figures and vectors -------------------------------------------------
    def _event_reports(self, session: Session, me: int, keys: list[int], at: int) -> list[Report]:
        """Reports of the window sharing the most lead names and figures with the article."""
        lo, hi = at - int(self.event_window), at + int(self.event_window)
        params: dict[str, object] = {f"k{i}": k for i, k in enumerate(keys)}
        params.update(lo=lo, hi=hi, per=_EVENT_PER_KEY, me=me, top=_EVENT_CANDIDATES, model=MODEL_NAME)
        out = []
        for aid, story, sig, vec in session.connection().execute(_event_reports_sql(len(keys)), params).all():
            if story is not None:
                out.append(Report(int(aid), int(story), Signature.from_json(sig), unpack(vec)))
        return out

    def _recent_reports(self, session: Session, me: int, at: int, have: set[int], vector: np.ndarray) -> list[Report]:
        """The reports closest in meaning among the ``_EVENT_RECENT`` of the window published
        nearest before ``at``, for an article in a script without capitals (Chinese, Japanese):
        it has no names to look candidates up by, and its figures alone seldom find any (the
        Chinese report of the seed event had none: it stayed a story of its own, a second alert
        for one event). ``decide`` compares it with them by meaning alone, as it would anyway;
        only the ``_EVENT_CANDIDATES`` most similar are read further (their names and figures)."""
        params = {"lo": at - int(self.event_window), "hi": at, "me": me, "n": _EVENT_RECENT, "model": MODEL_NAME}
        rows = [r for r in session.connection().execute(_RECENT_REPORTS, params).all()
                if r[1] is not None and int(r[0]) not in have]
        if not rows:
            return []
        vecs = [unpack(r[3]) for r in rows]
        sims = np.stack(vecs) @ np.asarray(vector, dtype=np.float32)
        top = np.argsort(-sims)[:_EVENT_CANDIDATES]
        return [Report(int(rows[i][0]), int(rows[i][1]), Signature.from_json(rows[i][2]), vecs[i]) for i in top]

    def _store_event(self, session: Session, article_id: int, at: int, sig: Signature, keys: list[int]) -> None:
        """Its names and figures, and its index keys. Its vector is the caller's to store
        (``monitor.embed.store.save_vector``, shared with ``about()`` rules)."""
        pg, conn = self._pg(session), session.connection()
        driver.run(conn, _PG_EVENT if pg else _EVENT,
                   {"a": article_id, "at": at, "sig": json.dumps(sig.to_json(), separators=(",", ":"))})
        if keys and pg:  # one statement, not one row per round trip
            driver.run(conn, _PG_EVENT_KEYS, {"k": keys, "at": at, "a": article_id})
        elif keys:
            driver.run_many(conn, _EVENT_KEYS, [{"k": k, "at": at, "a": article_id} for k in keys])

    @classmethod
    def prune_events(cls, session: Session, chunk: int, before: int, chunks: int = PRUNE_CHUNKS) -> int:
        """Drop event entries published before ``before`` (epoch seconds): one slice of the key space.

        The window slides, the tables do not grow: every key range is swept once per
        ``chunks`` calls, the signatures (indexed by time) at chunk 0.
        """
        span = 2 ** 32 // chunks
        lo = -(2 ** 31) + chunk * span
        hi = lo + span - 1 if chunk < chunks - 1 else 2 ** 31 - 1  # INTEGER keys: the bound must fit too
        res = session.execute(delete(StoryEventKey).where(col(StoryEventKey.key) >= lo, col(StoryEventKey.key) <= hi,
                                                          col(StoryEventKey.at) < before))
        n = int(getattr(res, "rowcount", 0) or 0)
        if chunk == 0:
            res = session.execute(delete(StoryEvent).where(col(StoryEvent.at) < before))
            n += int(getattr(res, "rowcount", 0) or 0)
        return n

    @staticmethod
    def _apart(session: Session, story_id: int) -> set[int]:
        """Stories an analyst split from this one."""
        rows = driver.rows(session.connection(), _APART, {"s": story_id})
        return {b if a == story_id else a for a, b in rows}

    @classmethod
    def prune_chunk(cls, session: Session, chunk: int, since: datetime, chunks: int = PRUNE_CHUNKS) -> int:
        """Drop the index entries of articles older than the window, one slice at a time.

        Article ids grow with time, so "older than the window" is "id below the first article
        inside it". SQLite's band table has no index by article (that would double it), so it is
        swept in slices of the band key space; PostgreSQL's signatures are keyed by article.
        """
        first_live = session.exec(select(func.min(Article.id)).where(col(Article.first_seen_at) >= since)).first()
        if first_live is None:
            return 0
        if cls._pg(session):
            if chunk:
                return 0
            res = session.execute(text("DELETE FROM dedup_sig WHERE article_id < :f"), {"f": first_live})
        else:
            span = 2 ** 32 // chunks  # band keys are signed 32-bit
            lo = -(2 ** 31) + chunk * span
            hi = lo + span if chunk < chunks - 1 else 2 ** 31
            res = session.execute(delete(DedupBand).where(col(DedupBand.band) >= lo, col(DedupBand.band) < hi,
                                                          col(DedupBand.article_id) < first_live))
        n = int(getattr(res, "rowcount", 0) or 0)
        if n:
            log.info("dedup index: entries of %d articles older than the window pruned", n)
        return n

    @classmethod
    def _claim(cls, session: Session, keys: list[int]) -> None:
        """Serialise concurrent copies of one story across instances, by a unique key.

        Each band (and the body hash) is inserted into ``dedup_claim``, whose primary key makes a
        second transaction inserting the same key wait until the first commits; the first
        deletes its keys before committing, so the second then proceeds and its candidate search
        (a new statement, READ COMMITTED) sees the first article. Keys go in sorted order, so two
        claimers cannot deadlock. SQLite needs none of this: the story is placed before the
        article's insert, so these reads run before the transaction's first write (outside the
        write lock), which is right only because one daemon ingests into a SQLite file
        (``monitor.store.leases.InstanceLock``) on one ingest thread.
        """
        if keys and cls._pg(session):
            driver.run(session.connection(), _PG_CLAIM, {"k": keys})

    @classmethod
    def _release(cls, session: Session, keys: list[int]) -> None:
        if keys and cls._pg(session):
            driver.run(session.connection(), _PG_RELEASE, {"k": keys})

    @staticmethod
    def _merge(session: Session, into: int, others: Sequence[int]) -> tuple[int, ...]:
        """An article bridging two stories (a fuller copy arriving late) makes them one; the
        stories merged into ``into``. Their alerts already in the outbox are the alert stage's
        (``monitor.alerts.settle``), told by ``Assignment.merged``."""
        if not others:
            return ()
        log.info("stories %s merged into story %s", ", ".join(map(str, others)), into)
        session.execute(update(Article).where(col(Article.story_id).in_(others)).values(story_id=into))
        # An analyst's mute of either story holds for the merged one.
        session.execute(update(Feedback).where(col(Feedback.story_id).in_(others)).values(story_id=into))
        have = {(r, s) for r, s in session.exec(select(StoryAlert.rule, StoryAlert.statement)
                                                 .where(StoryAlert.story_id == into)).all()}
        for sa in session.exec(select(StoryAlert).where(col(StoryAlert.story_id).in_(others))).all():
            if (sa.rule, sa.statement) in have:
                session.delete(sa)
            else:
                have.add((sa.rule, sa.statement))
                sa.story_id = into
                session.add(sa)
        session.flush()
        session.execute(delete(Story).where(col(Story.id).in_(others)))
        return tuple(others)


# -- what a story already carries ---------------------------------------------------------------

def _seen(sentence: str, earlier: set[int], earlier_words: set[str]) -> bool:
    """A sentence is not new if most of it is already in the story (re-punctuated or lightly edited)."""
    words = tokens(sentence)
    if len(words) < 4:
        return all(w in earlier_words for w in words)
    sh = shingles(words)
    return len(sh & earlier) >= 0.6 * len(sh)


def new_statements(session: Session, article: Article, sentences: Iterable[str], seen: str = "") -> list[str]:
    """Matching sentences of the article that no earlier article of its story carries (nor
    ``seen``: the article's own text before it was read again)."""
    earlier_texts = list(session.exec(select(Article.text).where(
        Article.story_id == article.story_id, col(Article.id) != article.id,
        col(Article.id) < (article.id or 0))).all())
    if seen:
        earlier_texts.append(seen)
    headline = tokens(article.title)  # extractors often keep the h1 in the body; a new headline is no statement
    return unseen(earlier_texts, [s for s in sentences if tokens(s) != headline])


def unseen(earlier_texts: Iterable[str], sentences: Iterable[str]) -> list[str]:
    """The sentences none of ``earlier_texts`` carries, even re-punctuated or lightly edited."""
    earlier: set[int] = set()
    earlier_words: set[str] = set()
    for t in earlier_texts:
        w = tokens(t)
        earlier |= shingles(w)
        earlier_words |= set(w)
    return [s for s in sentences if not _seen(s, earlier, earlier_words)]


def split_article(session: Session, story_id: int, article_id: int, now: datetime | None = None) -> int:
    """An analyst's decision: the article is not this story's event. Returns its new story.

    The article gets a story of its own, and the two stories are kept apart for good: a later
    copy bridging them does not merge them again. The alerts already sent stay with the old
    story; the new one may alert on its own.
    """
    art = session.get(Article, article_id)
    if art is None or art.story_id != story_id:
        raise ValueError(f"article {article_id} is not in story {story_id}")
    others = session.exec(select(func.count()).select_from(Article).where(
        Article.story_id == story_id, col(Article.id) != article_id)).one()
    if not others:
        raise ValueError(f"article {article_id} is the only article of story {story_id}")
    st = Story(title=art.title, created_at=now or datetime.now(UTC))
    session.add(st)
    session.flush()
    assert st.id is not None
    art.story_id = st.id
    session.add(art)
    session.add(StoryApart(story_id=min(st.id, story_id), other_id=max(st.id, story_id)))
    session.flush()
    log.info("article %s split from story %s into story %s", article_id, story_id, st.id)
    return st.id


def merge_stories(session: Session, into: int, other: int) -> None:
    """An analyst's decision: two stories are one event. ``other``'s articles and alert
    bookkeeping move into ``into``, so the merged story alerts once per rule, as one story."""
    if into == other:
        raise ValueError("a story cannot be merged into itself")
    for sid in (into, other):
        if session.get(Story, sid) is None:
            raise ValueError(f"no story {sid}")
    session.execute(delete(StoryApart).where(
        (col(StoryApart.story_id) == min(into, other)) & (col(StoryApart.other_id) == max(into, other))))
    # Kept-apart decisions about ``other`` now hold for the merged story.
    for row in session.exec(select(StoryApart).where(
            (col(StoryApart.story_id) == other) | (col(StoryApart.other_id) == other))).all():
        peer = row.other_id if row.story_id == other else row.story_id
        session.delete(row)
        session.flush()
        if session.get(StoryApart, (min(into, peer), max(into, peer))) is None:
            session.add(StoryApart(story_id=min(into, peer), other_id=max(into, peer)))
    StoryIndex._merge(session, into, [other])
    session.flush()
