"""Analysts' feedback, applied in the gate: mutes decide before an alert is written.

"mute_source" removes a rule's matches in a source's articles (they are not stored as matches at
all); "mute_story" keeps the match on record but never alerts the story again for that rule.
"wrong" only counts (the rule's running precision estimate). The console writes these rows;
the pipeline reads them per article, inside the article's own transaction, so a mute applies to
the very next article.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, bindparam, func, or_
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from monitor.store import driver
from monitor.store.models import Feedback, Match

KINDS = ("wrong", "mute_story", "mute_source")


@dataclass(frozen=True)
class Mutes:
    """The live mutes that concern one article: rules muted for its source and for its story."""

    source_rules: frozenset[str] = frozenset()
    story_rules: frozenset[str] = frozenset()


# Asked for every article that matched: written once (building it with the ORM each time cost
# more than running it, issue 15).
_F = Feedback.__table__  # type: ignore[attr-defined]
_LIVE_MUTES = core_select(_F.c.kind, _F.c.rule).where(
    _F.c.undone_at.is_(None), or_(and_(_F.c.kind == "mute_source", _F.c.source_id == bindparam("src")),
                                  and_(_F.c.kind == "mute_story", _F.c.story_id == bindparam("story"))))


def mutes_for(session: Session, source_id: int, story_id: int) -> Mutes:
    rows = driver.rows(session.connection(), _LIVE_MUTES, {"src": source_id, "story": story_id})
    return Mutes(frozenset(r for k, r in rows if k == "mute_source"),
                 frozenset(r for k, r in rows if k == "mute_story"))


def record(session: Session, rule: str, kind: str, *, match_id: int | None = None,
           story_id: int | None = None, source_id: int | None = None) -> Feedback:
    """Add one feedback row (a repeat of a live one is not added twice). Caller commits."""
    if kind not in KINDS:
        raise ValueError(f"unknown feedback kind {kind!r}")
    q = select(Feedback).where(Feedback.rule == rule, Feedback.kind == kind, col(Feedback.undone_at).is_(None))
    q = q.where(Feedback.match_id == match_id) if kind == "wrong" else q
    q = q.where(Feedback.story_id == story_id) if kind == "mute_story" else q
    q = q.where(Feedback.source_id == source_id) if kind == "mute_source" else q
    existing = session.exec(q).first()
    if existing is not None:
        return existing
    fb = Feedback(rule=rule, kind=kind, match_id=match_id, story_id=story_id, source_id=source_id)
    session.add(fb)
    session.flush()
    return fb


def undo(session: Session, feedback_id: int) -> bool:
    fb = session.get(Feedback, feedback_id)
    if fb is None or fb.undone_at is not None:
        return False
    fb.undone_at = datetime.now(UTC)
    session.add(fb)
    return True


@dataclass(frozen=True)
class Precision:
    matches: int
    wrong: int

    @property
    def share_wrong(self) -> float | None:
        return self.wrong / self.matches if self.matches else None


def precision(session: Session, rule: str) -> Precision:
    """Matches of the rule and how many an analyst marked wrong (a running precision estimate)."""
    n = session.exec(select(func.count()).select_from(Match).where(Match.rule == rule)).one()
    wrong = session.exec(select(func.count(func.distinct(Feedback.match_id))).where(
        Feedback.rule == rule, Feedback.kind == "wrong", col(Feedback.undone_at).is_(None))).one()
    return Precision(int(n), int(wrong))
