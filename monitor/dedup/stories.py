"""Stories: every article joins the story it is a copy of, or starts a new one.

The caller (``monitor.pipeline``) owns the transaction: the article is flushed (it has an id),
then ``assign_story`` finds exact and near duplicates among the articles of the last
``window`` seconds, puts the article into a story and stores its LSH bands, all in that same
transaction. Alert gating (``claim_alert``) relies on a unique key per story and rule, so a story
alerts once however many outlets and instances see it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from monitor.dedup.near import Fingerprint, fingerprint, shingles, tokens, verify
from monitor.match import RuleMatch, Statement
from monitor.match.statements import find_speaker
from monitor.match.text import split_sentences
from monitor.store.models import (
    Article,
    DedupBand,
    DedupBoilerplate,
    DedupClaim,
    Source,
    Story,
    StoryAlert,
)

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 7 * 86400.0
MIN_CONTAINMENT = 0.42
RECENT_SAME_SOURCE = 20  # articles of the same outlet looked at to learn its boilerplate
MAX_CANDIDATES = 20
BOILERPLATE_SHARE = 0.4
PRUNE_EVERY = 500  # every this many articles, one slice of the band index is pruned ...
PRUNE_CHUNKS = 256  # ... of this many: the whole index is swept every 128,000 articles  # a shared paragraph set larger than this share of the article is a copy


@dataclass(frozen=True)
class Assignment:
    story_id: int
    new_story: bool
    duplicate_of: int | None = None  # exact copy (same normalised body) of that article
    similar_to: int | None = None  # verified near-duplicate
    score: float = 0.0


def _key(s: str) -> int:
    """A signed 63-bit key (fits BIGINT on both backends)."""
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little", signed=True) >> 1


def paragraph_key(paragraph: str) -> int | None:
    words = tokens(paragraph)
    return _key(" ".join(words)) if words else None


def _paragraphs(text: str) -> list[tuple[int, str]]:
    out = []
    for p in text.split("\n"):
        k = paragraph_key(p)
        if k is not None:
            out.append((k, p))
    return out


def _insert_ignore(session: Session, table: type, rows: list[dict[str, int]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on either backend."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        session.execute(pg_insert(table).values(rows).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        session.execute(sqlite_insert(table).values(rows).on_conflict_do_nothing())


class StoryIndex:
    """Finds an article's story; the index itself is in the database (``dedup_band``)."""

    def __init__(self, window: float = DEFAULT_WINDOW, min_containment: float = MIN_CONTAINMENT):
        self.window = window
        self.min_containment = min_containment

    # -- boilerplate ------------------------------------------------------------------------
    def learn_boilerplate(self, session: Session, article: Article, since: datetime) -> None:
        """Paragraphs this outlet also printed in other recent articles are its boilerplate.

        Unless they are most of the article: an outlet re-posting its own story is a copy.
        """
        paras = _paragraphs(article.text)
        if len(paras) < 2:
            return
        words = {k: len(tokens(p)) for k, p in paras}
        total = sum(words.values()) or 1
        recent = session.exec(
            select(Article.text).where(Article.source_id == article.source_id, col(Article.id) != article.id,
                                       col(Article.first_seen_at) >= since)
            .order_by(col(Article.id).desc()).limit(RECENT_SAME_SOURCE)).all()
        found: set[int] = set()
        for text in recent:
            shared = {k for k, _ in _paragraphs(text)} & words.keys()
            if shared and sum(words[k] for k in shared) <= BOILERPLATE_SHARE * total:
                found |= shared
        _insert_ignore(session, DedupBoilerplate,
                       [{"source_id": article.source_id, "paragraph": k} for k in sorted(found)])

    def clean_text(self, session: Session, source_id: int, text: str) -> str:
        """The text without its outlet's known boilerplate paragraphs."""
        paras = _paragraphs(text)
        if not paras:
            return text
        keys = {k for k, _ in paras}
        known = set(session.exec(select(DedupBoilerplate.paragraph).where(
            DedupBoilerplate.source_id == source_id, col(DedupBoilerplate.paragraph).in_(keys))).all())
        if not known:
            return text
        kept = [p for k, p in paras if k not in known]
        return "\n".join(kept) if kept else text

    # -- candidates -------------------------------------------------------------------------
    def candidates(self, session: Session, fp: Fingerprint, since: datetime,
                   exclude: int | None = None) -> list[int]:
        """Articles sharing at least one LSH band, most shared bands first."""
        if not fp.bands:
            return []
        n = func.count().label("n")
        q = (select(DedupBand.article_id, n)
             .join(Article, col(Article.id) == col(DedupBand.article_id))
             .where(col(DedupBand.band).in_(fp.bands), col(Article.first_seen_at) >= since)
             .group_by(col(DedupBand.article_id)).order_by(n.desc(), col(DedupBand.article_id))
             .limit(MAX_CANDIDATES))
        if exclude is not None:
            q = q.where(col(DedupBand.article_id) != exclude)
        return [aid for aid, _ in session.exec(q).all()]

    def fingerprint_of(self, session: Session, source_id: int, text: str, title: str = "") -> Fingerprint:
        """Of the body without boilerplate and without the headline (outlets rewrite those)."""
        text = self.clean_text(session, source_id, text)
        if title:
            head = tokens(title)
            text = "\n".join(p for p in text.split("\n") if tokens(p) != head)
        return fingerprint(text)

    # -- assignment -------------------------------------------------------------------------
    def assign(self, session: Session, article: Article, now: datetime | None = None) -> Assignment:
        """Put a flushed article into a story (joining, merging or creating one); store its bands."""
        assert article.id is not None
        now = now or datetime.now(UTC)
        since = now - timedelta(seconds=self.window)
        self.learn_boilerplate(session, article, since)
        fp = self.fingerprint_of(session, article.source_id, article.text, article.title)
        claims = sorted({*fp.bands, *([_key(article.content_hash)] if article.content_hash else [])})
        self._claim(session, claims)  # from here on, a concurrent copy of this story waits for us
        duplicate_of: int | None = None
        if article.content_hash:
            duplicate_of = session.exec(
                select(Article.id).where(Article.content_hash == article.content_hash,
                                         col(Article.id) != article.id)
                .order_by(col(Article.id)).limit(1)).first()

        matched: dict[int, tuple[float, int]] = {}  # story -> (score, article)
        if duplicate_of is not None:
            story = session.exec(select(Article.story_id).where(Article.id == duplicate_of)).first()
            if story is not None:
                matched[story] = (1.0, duplicate_of)
        for cand in self.candidates(session, fp, since, exclude=article.id):
            row = session.exec(select(Article.source_id, Article.text, Article.story_id, Article.title)
                               .where(Article.id == cand)).first()
            if row is None or row[2] is None:
                continue
            source_id, text, story, title = row
            other = self.fingerprint_of(session, source_id, text, title)
            score = verify(fp.shingles, other.shingles)
            log.debug("article %s vs %s: containment %.3f", article.id, cand, score)
            if score >= self.min_containment and score > matched.get(story, (0.0, 0))[0]:
                matched[story] = (score, cand)

        if matched:
            story_id = min(matched)
            score, similar = matched[story_id]
            self._merge(session, story_id, [s for s in matched if s != story_id])
            new = False
        else:
            st = Story(title=article.title, created_at=now)
            session.add(st)
            session.flush()
            assert st.id is not None
            story_id, score, similar, new = st.id, 0.0, None, True
        article.story_id = story_id
        article.duplicate_of = duplicate_of
        session.add(article)
        if fp.bands:
            session.execute(insert(DedupBand), [{"band": b, "article_id": article.id} for b in set(fp.bands)])
        self._release(session, claims)
        if article.id % PRUNE_EVERY == 0:
            self.prune_chunk(session, (article.id // PRUNE_EVERY) % PRUNE_CHUNKS, since)
        session.flush()
        return Assignment(story_id=story_id, new_story=new, duplicate_of=duplicate_of,
                          similar_to=similar if similar != duplicate_of else None, score=score)

    @staticmethod
    def prune_chunk(session: Session, chunk: int, since: datetime, chunks: int = PRUNE_CHUNKS) -> int:
        """Drop the band rows of articles older than the window, in one slice of the key space.

        The table has no index by article (that would double it); article ids grow with time,
        so "older than the window" is "id below the first article inside it".
        """
        first_live = session.exec(select(func.min(Article.id)).where(col(Article.first_seen_at) >= since)).first()
        if first_live is None:
            return 0
        span = 2 ** 63 // chunks  # band keys are in [-2^62, 2^62)
        lo = -(2 ** 62) + chunk * span
        hi = lo + span if chunk < chunks - 1 else 2 ** 62
        res = session.execute(delete(DedupBand).where(col(DedupBand.band) >= lo, col(DedupBand.band) < hi,
                                                      col(DedupBand.article_id) < first_live))
        n = int(getattr(res, "rowcount", 0) or 0)
        if n:
            log.info("dedup index: %d band rows of articles older than the window pruned", n)
        return n

    @staticmethod
    def _claim(session: Session, keys: list[int]) -> None:
        """Serialise concurrent copies of one story across instances, by a unique key.

        Each band (and the body hash) is inserted into ``dedup_claim``, whose primary key makes a
        second transaction inserting the same key wait until the first commits; the first
        deletes its keys before committing, so the second then proceeds and its candidate search
        (a new statement, READ COMMITTED) sees the first article. Keys go in sorted order, so two
        claimers cannot deadlock. SQLite needs none of this: it has one writer at a time and the
        article insert that precedes this already holds the write lock.
        """
        if not keys or session.get_bind().dialect.name != "postgresql":
            return
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        session.execute(pg_insert(DedupClaim).values([{"key": k} for k in keys]).on_conflict_do_nothing())

    @staticmethod
    def _release(session: Session, keys: list[int]) -> None:
        if keys and session.get_bind().dialect.name == "postgresql":
            session.execute(delete(DedupClaim).where(col(DedupClaim.key).in_(keys)))

    def _merge(self, session: Session, into: int, others: Sequence[int]) -> None:
        """An article bridging two stories (a fuller copy arriving late) makes them one."""
        if not others:
            return
        log.info("stories %s merged into story %s", ", ".join(map(str, others)), into)
        session.execute(update(Article).where(col(Article.story_id).in_(others)).values(story_id=into))
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


# -- alerts per story -------------------------------------------------------------------------

def statement_key(sentence: str) -> str:
    return hashlib.sha256(" ".join(tokens(sentence)).encode()).hexdigest()[:32]


def _seen(sentence: str, earlier: set[int], earlier_words: set[str]) -> bool:
    """A sentence is not new if most of it is already in the story (re-punctuated or lightly edited)."""
    words = tokens(sentence)
    if len(words) < 4:
        return all(w in earlier_words for w in words)
    sh = shingles(words)
    return len(sh & earlier) >= 0.6 * len(sh)


def new_statements(session: Session, article: Article, sentences: Iterable[str]) -> list[str]:
    """Matching sentences of the article that no earlier article of its story carries."""
    earlier_texts = session.exec(select(Article.text).where(
        Article.story_id == article.story_id, col(Article.id) != article.id,
        col(Article.id) < (article.id or 0))).all()
    earlier: set[int] = set()
    earlier_words: set[str] = set()
    for t in earlier_texts:
        w = tokens(t)
        earlier |= shingles(w)
        earlier_words |= set(w)
    headline = tokens(article.title)  # extractors often keep the h1 in the body; a new headline is no statement
    return [s for s in sentences if tokens(s) != headline and not _seen(s, earlier, earlier_words)]


def body_statements(body: str, match: RuleMatch) -> list[Statement]:
    """Every body sentence holding a hit of the match (the match quotes only the first few).

    A re-alert must see them all: the new statement is often further down in a later copy.
    """
    spans = [(h.start, h.end) for h in match.hits if h.field == "body"]
    out = []
    for a, b in split_sentences(body):
        hl = tuple((x - a, y - a) for x, y in spans if a <= x and y <= b)
        if hl:
            out.append(Statement(field="body", start=a, end=b, text=body[a:b], highlights=hl,
                                 speaker=find_speaker(body, a, b)))
    return out


def claim_alert(session: Session, article: Article, rule: str, sentences: Sequence[str],
                realert: str | None, new_story: bool) -> list[str] | None:
    """Whether this article's match of ``rule`` should alert, and the claim recorded if so.

    None: stay quiet. A list: alert; for a re-alert it holds the new sentences to quote (empty
    for the story's first alert).

    A story alerts once per rule; with ``realert = "new_statement"`` again for a matching
    sentence no earlier article of the story carried. The claim is a row with a unique key,
    written in a savepoint, so a concurrent instance that claimed first wins and this one skips.
    """
    assert article.story_id is not None and article.id is not None
    fresh: list[str] = []
    if not new_story:
        claimed = session.exec(select(StoryAlert.id).where(
            StoryAlert.story_id == article.story_id, StoryAlert.rule == rule)).first()
        if claimed is not None:
            if realert != "new_statement":
                return None
            fresh = new_statements(session, article, sentences)
            if not fresh:
                return None
    won: list[str] = []
    for sentence in fresh or [""]:
        try:
            with session.begin_nested():
                session.add(StoryAlert(story_id=article.story_id, rule=rule,
                                       statement=statement_key(sentence) if sentence else "", article_id=article.id))
                session.flush()
            won.append(sentence)
        except IntegrityError:
            continue  # claimed meanwhile by another article or instance
    if not won:
        return None
    return [w for w in won if w]


def also_reported_by(session: Session, article_id: int) -> list[str]:
    """The other outlets (source names) known to carry the article's story, first-seen order."""
    story_id = session.exec(select(Article.story_id).where(Article.id == article_id)).first()
    own = session.exec(select(Article.source_id).where(Article.id == article_id)).first()
    if story_id is None:
        return []
    rows = session.exec(
        select(Source.name, func.min(Article.id).label("first"))
        .join(Source, col(Source.id) == col(Article.source_id))
        .where(Article.story_id == story_id, Article.source_id != own)
        .group_by(col(Source.name)).order_by("first")).all()
    return [name for name, _ in rows]
