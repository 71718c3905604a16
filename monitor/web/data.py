"""What the console's pages read from the database: one function per page, each a few queries
bounded by the page size (never one query per row), returning plain dataclasses for templates."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import col, select

from monitor.store.db import session_scope
from monitor.store.models import Alert, Article, Delivery, Feedback, Match, Source, Story
from monitor.util import utcnow

PAGE = 25


def aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass
class MatchFilters:
    rule: str = ""
    source: str = ""
    language: str = ""
    story: int | None = None
    since: date | None = None
    until: date | None = None
    page: int = 1

    def query_string(self, **change: Any) -> str:
        from urllib.parse import urlencode

        values = {"rule": self.rule, "source": self.source, "language": self.language,
                  "story": self.story or "", "since": self.since or "", "until": self.until or "",
                  "page": self.page}
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1) or k != "page" and v})


@dataclass
class DeliveryView:
    id: int
    channel: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None

    @property
    def held(self) -> bool:
        """Pending and not yet due: held for its story to settle (``[monitor] alert_hold``)."""
        return self.status == "pending" and self.next_attempt_at is not None and self.next_attempt_at > utcnow()


@dataclass
class MatchView:
    id: int
    rule: str
    article_id: int
    title: str
    url: str
    outlet: str
    source_id: int
    language: str | None
    story_id: int | None
    story_title: str | None
    seen: datetime
    statements: list[dict[str, Any]]
    speaker: str | None
    alerted: bool
    other_outlets: list[str] = field(default_factory=list)
    deliveries: list[DeliveryView] = field(default_factory=list)
    wrong: bool = False
    story_muted: bool = False
    source_muted: bool = False


def list_matches(engine: Engine, f: MatchFilters, page_size: int = PAGE) -> tuple[list[MatchView], bool]:
    """Matches newest first with their alert's deliveries; (page, whether there is a next one)."""
    cols: list[Any] = [Match, Article.title, Article.url, Article.language, Article.story_id,
                       Article.first_seen_at, Source.name, Source.id, Story.title]
    q = (select(*cols)
         .join(Article, col(Article.id) == col(Match.article_id))
         .join(Source, col(Source.id) == col(Article.source_id))
         .outerjoin(Story, col(Story.id) == col(Article.story_id)))
    if f.rule:
        q = q.where(Match.rule == f.rule)
    if f.source:
        q = q.where(Source.name == f.source)
    if f.language:
        q = q.where(Article.language == f.language)
    if f.story:
        q = q.where(Article.story_id == f.story)
    if f.since:
        q = q.where(col(Match.created_at) >= datetime.combine(f.since, datetime.min.time(), UTC))
    if f.until:
        q = q.where(col(Match.created_at) < datetime.combine(f.until + timedelta(days=1), datetime.min.time(), UTC))
    q = q.order_by(col(Match.created_at).desc(), col(Match.id).desc())
    q = q.offset((max(f.page, 1) - 1) * page_size).limit(page_size + 1)
    with session_scope(engine) as s:
        rows = s.exec(q).all()
        more = len(rows) > page_size
        rows = rows[:page_size]
        views = [MatchView(id=m.id or 0, rule=m.rule, article_id=m.article_id, title=title, url=url, outlet=src,
                           source_id=src_id or 0, language=lang, story_id=story_id, story_title=story_title,
                           seen=aware(seen) or m.created_at, statements=list(m.statements or []),
                           speaker=m.speaker, alerted=False)
                 for m, title, url, lang, story_id, seen, src, src_id, story_title in rows]
        _decorate(s, views)
    return views, more


def _decorate(s: Any, views: list[MatchView]) -> None:
    """Deliveries, other outlets of the story and feedback for a page of matches (4 queries)."""
    if not views:
        return
    by_match = {v.id: v for v in views}
    alerts = s.exec(select(Alert.id, Alert.match_id).where(col(Alert.match_id).in_(list(by_match)))).all()
    alert_match = {a: m for a, m in alerts}
    for _a, m in alerts:
        by_match[m].alerted = True
    if alert_match:
        for d in s.exec(select(Delivery).where(col(Delivery.alert_id).in_(list(alert_match)))
                        .order_by(col(Delivery.channel))).all():
            by_match[alert_match[d.alert_id]].deliveries.append(DeliveryView(
                d.id or 0, d.channel, d.status, d.attempts, d.last_error, aware(d.next_attempt_at), aware(d.sent_at)))
    stories = {v.story_id for v in views if v.story_id}
    if stories:
        outlets: dict[int, set[str]] = defaultdict(set)
        for sid, name in s.exec(select(Article.story_id, Source.name).join(Source, col(Source.id) == col(Article.source_id))
                                .where(col(Article.story_id).in_(stories)).distinct()).all():
            outlets[sid].add(name)
        for v in views:
            v.other_outlets = sorted(outlets.get(v.story_id or 0, set()) - {v.outlet})
    fbs = s.exec(select(Feedback).where(col(Feedback.undone_at).is_(None),
                                        col(Feedback.rule).in_({v.rule for v in views}))).all()
    for v in views:
        for fb in fbs:
            if fb.rule != v.rule:
                continue
            v.wrong |= fb.kind == "wrong" and fb.match_id == v.id
            v.story_muted |= fb.kind == "mute_story" and fb.story_id == v.story_id and v.story_id is not None
            v.source_muted |= fb.kind == "mute_source" and fb.source_id == v.source_id


def match_by_id(engine: Engine, match_id: int) -> Match | None:
    with session_scope(engine) as s:
        return s.get(Match, match_id)


def match_context(engine: Engine, match_id: int) -> tuple[Match, Article] | None:
    with session_scope(engine) as s:
        m = s.get(Match, match_id)
        if m is None:
            return None
        a = s.get(Article, m.article_id)
        return (m, a) if a is not None else None


def filter_choices(engine: Engine) -> dict[str, list[str]]:
    with session_scope(engine) as s:
        return {
            "rules": sorted(r for r in s.exec(select(Match.rule).distinct()).all()),
            "sources": sorted(r for r in s.exec(select(Source.name)).all()),
            # Languages of matched articles only: a distinct over every stored article is a full scan.
            "languages": sorted(r for r in s.exec(select(Article.language).join(
                Match, col(Match.article_id) == col(Article.id)).distinct()).all() if r),
        }


# -- stories -----------------------------------------------------------------------------------

@dataclass
class StoryArticle:
    id: int
    title: str
    url: str
    outlet: str
    language: str | None
    seen: datetime
    text: str = ""


@dataclass
class StoryView:
    id: int
    title: str
    created: datetime
    articles: list[StoryArticle] = field(default_factory=list)
    alerts: list[tuple[int, str]] = field(default_factory=list)  # (match id, rule)

    @property
    def outlets(self) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for a in self.articles:
            seen.setdefault(a.outlet, a.language or "?")
        return sorted(seen.items())


def list_stories(engine: Engine, page: int = 1, min_articles: int = 1, page_size: int = 20
                 ) -> tuple[list[StoryView], bool]:
    with session_scope(engine) as s:
        q = select(Story).order_by(col(Story.created_at).desc(), col(Story.id).desc())
        if min_articles > 1:
            big = (select(Article.story_id).group_by(col(Article.story_id))
                   .having(func.count() >= min_articles))
            q = q.where(col(Story.id).in_(big))
        rows = s.exec(q.offset((max(page, 1) - 1) * page_size).limit(page_size + 1)).all()
        more = len(rows) > page_size
        views = {r.id: StoryView(r.id or 0, r.title, aware(r.created_at) or r.created_at) for r in rows[:page_size]}
        _story_articles(s, views, with_text=False)
    return list(views.values()), more


def story(engine: Engine, story_id: int) -> StoryView | None:
    with session_scope(engine) as s:
        r = s.get(Story, story_id)
        if r is None:
            return None
        views = {r.id: StoryView(r.id or 0, r.title, aware(r.created_at) or r.created_at)}
        _story_articles(s, views, with_text=True)
    return views[story_id]


def _story_articles(s: Any, views: dict[int | None, StoryView], with_text: bool) -> None:
    if not views:
        return
    cols: Any = [Article.id, Article.title, Article.url, Source.name, Article.language, Article.first_seen_at,
                 Article.story_id]
    if with_text:
        cols.append(Article.text)
    q = (select(*cols).join(Source, col(Source.id) == col(Article.source_id))
         .where(col(Article.story_id).in_(list(views))).order_by(col(Article.first_seen_at), col(Article.id)))
    for row in s.exec(q).all():
        v = views[row[6]]
        v.articles.append(StoryArticle(row[0], row[1], row[2], row[3], row[4], aware(row[5]) or row[5],
                                       row[7] if with_text else ""))
    for mid, rule, sid in s.exec(select(Match.id, Match.rule, Article.story_id)
                                 .join(Article, col(Article.id) == col(Match.article_id))
                                 .join(Alert, col(Alert.match_id) == col(Match.id))
                                 .where(col(Article.story_id).in_(list(views)))).all():
        views[sid].alerts.append((mid, rule))


# -- articles ------------------------------------------------------------------------------------

def article(engine: Engine, article_id: int) -> tuple[Article, str] | None:
    with session_scope(engine) as s:
        row = s.exec(select(Article, Source.name).join(Source, col(Source.id) == col(Article.source_id))
                     .where(Article.id == article_id)).first()
        return (row[0], row[1]) if row else None


# -- sources -------------------------------------------------------------------------------------

@dataclass
class SourceView:
    name: str
    url: str
    kind: str
    state: str
    last_polled: datetime | None
    next_poll: datetime | None
    last_error: str | None
    per_day: list[int]
    in_config: bool
    pages: str | None = None  # its latest articles stored without their page, and why (``page_health``)
    warnings: tuple[str, ...] = ()  # what the last poll that read it noticed without failing
    warned_at: datetime | None = None


def list_sources(engine: Engine, configured: list[str], days: int = 14,
                 now: datetime | None = None) -> list[SourceView]:
    now = now or datetime.now(UTC)
    first = (now - timedelta(days=days - 1)).date()
    from monitor.store.page_health import page_health
    from monitor.store.source_table import source_warnings

    with session_scope(engine) as s:
        rows = s.exec(select(Source).order_by(col(Source.name))).all()
        health = page_health(s.connection(), [r.id for r in rows if r.id is not None])
    counts = _daily_counts(engine, first)
    out = []
    for r in rows:
        state = ("disabled" if r.disabled_at else "broken" if r.broken_since
                 else "failing" if r.consecutive_failures else "ok" if r.last_polled_at else "new")
        per_day = [counts.get((r.id or 0, (first + timedelta(days=i)).isoformat()), 0) for i in range(days)]
        h = health.get(r.id or 0)
        out.append(SourceView(r.name, r.url, r.kind, state, aware(r.last_polled_at), aware(r.next_poll_at),
                              r.disabled_reason or r.last_error, per_day, r.name in configured,
                              h.line() if h is not None else None, tuple(source_warnings(r.last_warnings)),
                              aware(r.last_warnings_at)))
    return out


_COUNTS: dict[tuple[int, date], tuple[float, dict[tuple[int, str], int]]] = {}
COUNTS_TTL = 300.0  # the sparklines may be five minutes old; counting is a scan of the window


def _daily_counts(engine: Engine, first: date) -> dict[tuple[int, str], int]:
    """Articles per (source id, ISO day) since ``first``, cached for COUNTS_TTL seconds."""
    key = (id(engine), first)
    hit = _COUNTS.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    day = func.date(Article.first_seen_at)
    counts: dict[tuple[int, str], int] = {}
    with session_scope(engine) as s:
        for sid, d, n in s.exec(select(Article.source_id, day, func.count())
                                .where(col(Article.first_seen_at) >= datetime.combine(first, datetime.min.time(), UTC))
                                .group_by(col(Article.source_id), day)).all():
            counts[(sid, str(d))] = n
    _COUNTS.clear()  # one window at a time
    _COUNTS[key] = (time.monotonic() + COUNTS_TTL, counts)
    return counts


def reset_source(engine: Engine, name: str) -> bool:
    """Poll at the next run: clear backoff, Retry-After and the 410 mark (as ``sources --reset``)."""
    with session_scope(engine) as s:
        row = s.exec(select(Source).where(Source.name == name)).first()
        if row is None:
            return False
        row.next_poll_at = None
        row.disabled_at = None
        row.disabled_reason = None
        s.add(row)
    return True


def retry_delivery(engine: Engine, delivery_id: int) -> bool:
    """Send a failed or dead delivery again at the next delivery run (``alerts retry``'s own code)."""
    from monitor.alerts.outbox import retry

    with session_scope(engine) as s:
        return retry(s, delivery_id) > 0


def mutes(engine: Engine, rule: str) -> list[tuple[Feedback, str]]:
    """The rule's live mutes with what they name (story title or source name)."""
    with session_scope(engine) as s:
        fbs = s.exec(select(Feedback).where(Feedback.rule == rule, col(Feedback.kind).in_(("mute_story", "mute_source")),
                                            col(Feedback.undone_at).is_(None)).order_by(col(Feedback.id))).all()
        out = []
        for fb in fbs:
            if fb.kind == "mute_story":
                st = s.get(Story, fb.story_id) if fb.story_id else None
                out.append((fb, f"story: {st.title if st else fb.story_id}"))
            else:
                src = s.get(Source, fb.source_id) if fb.source_id else None
                out.append((fb, f"source: {src.name if src else fb.source_id}"))
        return out
