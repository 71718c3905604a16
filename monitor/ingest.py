"""Ingest: one new article through store -> story -> match -> gate -> outbox.

Each step is a function with typed input and output, in data-flow order, so each can be tested
alone and a change finds its place:

    new_article(source, entry, page)       -> Article      the row to store (no database)
    StoryIndex.place(session, article, vec) -> Placed     monitor.story: its story (copy or same event),
                                                           decided before the article is stored
    store_article(session, article, vec)   -> int          the article's id (its row written once, with
                                                           its story); then StoryIndex.record: its bands
    match_article(rules, article, ...)     -> RuleMatch*   monitor.match: every matching rule
    gate_all(session, article, story, ms)  -> Verdict*     monitor.alerts.gate: analysts' mutes, then
                                                           once per story and rule (``gate``)
    enqueue(session, article, src, verdict)-> Match        monitor.alerts.outbox: match row, alert, deliveries
    settle(session, story, realert)        -> int          monitor.alerts.settle: when the article merged
                                                           stories, their redundant held alerts taken back

``Ingest.run`` chains them in one transaction owned by the caller, so a crash never leaves an
article without its story, its matches or their alerts. ``Ingest.reread`` is the same for a
stored article whose feed entry changed (README "Updated articles"): its new text stored, then
match -> gate (told what the article said before) -> outbox, in its story.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Insert, bindparam, insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from monitor.alerts.gate import Verdict, gate_all
from monitor.alerts.outbox import enqueue
from monitor.alerts.settle import settle
from monitor.config import SourceConfig
from monitor.extract.result import Extracted
from monitor.match import Document, RuleMatch, RuleSet
from monitor.match.evaluate import DocIndex
from monitor.match.text import terms, terms_of
from monitor.pagework import stored_title
from monitor.parse import FeedEntry
from monitor.parse.urls import preferred_url
from monitor.store import driver
from monitor.store.models import Article, Source
from monitor.store.terms import replace_terms, save_terms
from monitor.story import content_hash
from monitor.story.result import TextPrints
from monitor.story.stories import Assignment, StoryIndex
from monitor.util import too_old


def new_article(source_id: int, sc: SourceConfig, entry: FeedEntry, ex: Extracted | None,
                page_error: str | None, now: datetime | None = None, prints: TextPrints | None = None,
                url: str | None = None) -> Article:
    """The row to store for a feed entry and its extracted page (the feed's content without one).
    Computed with the page already, in its extraction worker (``monitor.pagework``): ``prints``,
    its story prints, whose content hash is the text's; ``url``, the URL to store."""
    url = url or preferred_url(entry.url, ex.canonical_url if ex else None)
    text = ex.text if ex else entry.content_text
    title = stored_title(entry.title, ex.title if ex else None, url)
    published = entry.published or (ex.published if ex else None)
    now = now or datetime.now(UTC)
    if ex is not None:
        language = ex.language
    else:  # the feed's own text: identified here (a page's language, by the extractor)
        from monitor.extract.language import detect_language

        language = detect_language(text, entry.language)
    return Article(
        source_id=source_id, guid=entry.guid, url=url, original_url=entry.original_url or entry.url,
        title=title, text=text, published=published or now, published_estimated=published is None,
        authors=(ex.authors if ex and ex.authors else entry.author),
        language=language,
        full_text=ex is not None, fetch_error=page_error if sc.full_text else None,
        image=(ex.image if ex and ex.image else entry.image),
        content_hash=prints.content_hash if prints is not None and prints.text == text else
        content_hash(text) if text else None, first_seen_at=now, entry_digest=entry.digest(),
    )


def document_of(article: Article, source_name: str, vector: Any = None) -> Document:
    """What a rule sees of a stored (or about to be stored) article."""
    return Document(title=article.title, body=article.text, url=article.url,
                    site=urlsplit(article.url).hostname or "", source=source_name, lang=article.language,
                    author=article.authors or "", vector=vector)


@lru_cache(maxsize=1)
def _insert_article() -> tuple[Insert, tuple[str, ...]]:
    """The article INSERT ... RETURNING id, built once, and the columns it writes."""
    t = Article.__table__  # type: ignore[attr-defined]
    names = tuple(c.name for c in t.c if c.name != "id")
    return insert(t).values({n: bindparam(n) for n in names}).returning(t.c.id), names


def store_article(session: Session, article: Article, vector: Any = None, distinct: Iterable[str] | None = None) -> int:
    """Insert the article (and its meaning vector); IntegrityError if its URL is stored already.
    ``article`` gets its id; it is not added to the session (a Core insert: the ORM's flush of
    one object cost more than the insert itself, issue 15).

    Its distinct folded words are stored too, for the rule editor's preview (exact narrowing,
    monitor.store.terms): ``distinct`` when the caller has split them already (the matcher's
    ``DocIndex.uniq``), else split here."""
    stmt, names = _insert_article()
    values = {n: getattr(article, n) for n in names}
    row = driver.run(session.connection(), stmt, values)[1]  # on the driver's cursor (issue 15)
    assert row is not None
    set_committed_value(article, "id", int(row[0]))
    assert article.id is not None
    save_terms(session, article.id, terms(article.title, article.text) if distinct is None else terms_of(distinct))
    if vector is not None:
        from monitor.embed.store import save_vector

        save_vector(session, article.id, vector)
    return article.id


def match_article(rules: RuleSet, article: Article, source_name: str, vector: Any = None) -> list[RuleMatch]:
    return rules.match(document_of(article, source_name, vector))


@dataclass(frozen=True)
class Ingested:
    """What one article's ingest did."""

    article_id: int
    story: Assignment
    matches: int
    alerts: int


@dataclass(frozen=True)
class Reread:
    """What reading an updated article again did."""

    article_id: int
    changed: bool  # its title or text changed (else only its entry's digest was)
    matches: int
    alerts: int


@dataclass
class Ingest:
    """The ingest steps with what they read from the config."""

    rules: RuleSet
    stories: StoryIndex
    realert: Mapping[str, str | None]  # rule -> its realert policy
    channels: Mapping[str, tuple[str, ...]]  # rule -> the channels it alerts
    alert_max_age: float | None = None  # seconds; older articles are recorded but never alert
    hold: float = 0.0  # seconds an alert waits before it is due ([monitor] alert_hold; 0 for run --once)

    def run(self, session: Session, article: Article, source: Source, vector: Any = None,
            prints: TextPrints | None = None) -> Ingested:
        """All steps for one new article, in the caller's transaction. ``prints``: what its
        extraction worker computed for its story (``monitor.pagework``); the same computed here
        without them."""
        ix = DocIndex(document_of(article, source.name, vector))  # split once: stored words, matching
        # The story first, so the article's row is written once, with it (not inserted, then
        # updated: SQLite rewrites the whole row, text and all).
        placed = self.stories.place(session, article, vector=vector, prints=prints)
        story = placed.story
        article.story_id, article.duplicate_of = story.story_id, story.duplicate_of
        article_id = store_article(session, article, vector, ix.uniq)
        self.stories.record(session, article_id, placed)
        matches = self.rules.match(ix)
        if matches and too_old(article, self.alert_max_age):
            # A backlog article: its matches are recorded (backtest and the console show them)
            # but it neither alerts nor claims the story's alert, so a fresh report still does.
            verdicts = [Verdict(m, alert=False) for m in matches]
        else:
            verdicts = gate_all(session, article, story, matches, self.realert, self.rules.entities)
        for v in verdicts:
            enqueue(session, article, source, v, self.channels.get(v.match.rule, ()), hold=self.hold)
        if story.merged:  # stories that each alerted may be one event now: one alert for it
            settle(session, story.story_id, self.realert)
        return Ingested(article_id, story, len(verdicts), sum(v.alert for v in verdicts))

    def reread(self, session: Session, article_id: int, fresh: Article, source: Source,
               embed: Callable[[Article], Any] | None = None) -> Reread | None:
        """An article read again because its feed entry changed (``monitor.pipeline``): ``fresh``
        is the row ``new_article`` makes of the entry and its page now. The stored article takes
        its title and text, and is matched again; in the caller's transaction. None if the
        article is gone (deleted by retention meanwhile).

        The article keeps its story (its place was decided by what it said first; a copy of the
        new text elsewhere finds it by its content hash). The gate decides as for any report of
        a known story, told what the article said before: a rule its story had not alerted
        for alerts now, quoting the statements; a rule it had alerted for stays quiet, or with
        ``realert = "new_statement"`` alerts for statements the article and its story did not
        carry before. ``embed``: the meaning vector of the new text (about() rules, events),
        computed only if the text changed."""
        stored = session.get(Article, article_id)
        if stored is None:
            return None
        stored.reread_count += 1
        stored.reread_at = datetime.now(UTC)
        if not fresh.full_text and stored.full_text:
            # The page was not read this time (down, a wall now): a reading that failed. The
            # old digest stays, so a later poll tries again (``REREAD_GAP``, ``MAX_REREADS``).
            session.add(stored)
            return Reread(article_id, changed=False, matches=0, alerts=0)
        stored.entry_digest = fresh.entry_digest
        title, text = fresh.title or stored.title, fresh.text
        if _shrunk(stored.text, text):
            # The page says less than half of what it said (an error page, a retraction
            # notice): what was read before stays, with what the page says now after it.
            text = _with_news(stored.text, text)
        if (title, text) == (stored.title, stored.text):
            session.add(stored)
            return Reread(article_id, changed=False, matches=0, alerts=0)
        before = f"{stored.title}\n{stored.text}"
        old_terms = terms(stored.title, stored.text)
        stored.title, stored.text = title, text
        stored.content_hash = content_hash(text) if text else None
        if fresh.full_text:
            stored.full_text, stored.fetch_error = True, None
            stored.language = fresh.language or stored.language  # identified on the page's text now
        vector = embed(stored) if embed is not None else None
        ix = DocIndex(document_of(stored, source.name, vector))
        replace_terms(session, article_id, old_terms, terms_of(ix.uniq))
        if vector is not None:
            from monitor.embed.store import save_vector

            save_vector(session, article_id, vector)
        session.add(stored)
        session.flush()
        matches = self.rules.match(ix)
        if matches and too_old(stored, self.alert_max_age):
            verdicts = [Verdict(m, alert=False) for m in matches]
        else:
            assert stored.story_id is not None
            known = Assignment(story_id=stored.story_id, new_story=False)
            verdicts = gate_all(session, stored, known, matches, self.realert, self.rules.entities, seen=before)
        for v in verdicts:
            enqueue(session, stored, source, v, self.channels.get(v.match.rule, ()), reread=stored.reread_count,
                    hold=self.hold)
        return Reread(article_id, changed=True, matches=len(verdicts), alerts=sum(v.alert for v in verdicts))


def _shrunk(before: str, now: str) -> bool:
    from monitor.story.near import tokens

    return len(tokens(now)) * 2 < len(tokens(before))


def _with_news(text: str, now: str) -> str:
    """``text`` and the paragraphs of ``now`` it does not hold (compared by their words)."""
    from monitor.story.near import tokens

    held = f" {' '.join(tokens(text))} "
    news = [p for p in now.split("\n") if (words := " ".join(tokens(p))) and f" {words} " not in held]
    return "\n\n".join([text, *news]) if news else text
