"""The gate: whether one rule's match of one article alerts, once per story and rule.

A story alerts once per rule however many outlets and instances see it; with
``realert = "new_statement"`` again for a matching sentence no earlier article of the story
carried, quoting only those sentences. Every decision is a claim: a ``story_alert`` row with a
unique key, written in the ingest transaction (INSERT ... ON CONFLICT DO NOTHING), so a
concurrent instance that claimed first wins and this one stays quiet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import DateTime, bindparam, text
from sqlalchemy import select as core_select
from sqlmodel import Session

from monitor.alerts.feedback import Mutes, mutes_for
from monitor.match import RuleMatch, body_statements, with_speakers
from monitor.match.speakers import Entities, opinion_voice
from monitor.store import driver
from monitor.store.models import Article, StoryAlert
from monitor.story.near import tokens
from monitor.story.stories import Assignment, new_statements

MAX_REALERT_QUOTES = 3

# The claim's statements, written once. ON CONFLICT DO NOTHING instead of a savepoint around an
# insert that may fail: one statement instead of three, same outcome (issue 15).
_SA = StoryAlert.__table__  # type: ignore[attr-defined]
_CLAIMED = core_select(_SA.c.id).where(_SA.c.story_id == bindparam("story"), _SA.c.rule == bindparam("rule")).limit(1)
_CLAIM = text("INSERT INTO story_alert (story_id, rule, statement, article_id, created_at) "
              "VALUES (:story, :rule, :statement, :article, :at) ON CONFLICT DO NOTHING RETURNING id").bindparams(
    bindparam("at", type_=DateTime(timezone=True)))


@dataclass(frozen=True)
class Verdict:
    """The gate's decision on one match, handed to the outbox."""

    match: RuleMatch  # as recorded; a re-alert's quotes only the statements new to the story
    alert: bool  # False: the story already alerted for this rule, so the match is only recorded


def statement_key(sentence: str) -> str:
    return hashlib.sha256(" ".join(tokens(sentence)).encode()).hexdigest()[:32]


def gate(session: Session, article: Article, story: Assignment, match: RuleMatch,
         realert: str | None, entities: Entities | None = None, seen: str = "") -> Verdict:
    """Decide (and claim) whether ``match`` alerts; ``article`` is stored and in ``story``.

    ``entities`` (the rules' entities) name the speakers of the statements a re-alert quotes.
    Only a re-alert reads the article's matching sentences (``claim_alert``), and only the few
    it quotes need their speakers: attributing every one cost more than the rest of the gate.
    ``seen``: what the article said before it was read again (``Ingest.reread``): a re-alert
    quotes none of it."""
    sentences = (body_statements(article.text, match, article.title, speakers=False)
                 if not story.new_story and realert == "new_statement" else [])
    claim = claim_alert(session, article, match.rule, [st.text for st in sentences], realert, story.new_story,
                        seen)
    if claim is None:
        return Verdict(match, alert=False)
    if claim:  # a re-alert quotes the statements that are new to the story
        quoted = [st for st in sentences if st.text in claim][:MAX_REALERT_QUOTES]
        voice = opinion_voice(article.title, article.text, article.url, article.authors or "")
        match = replace(match, statements=tuple(with_speakers(article.text, quoted, article.title, entities, voice)))
    return Verdict(match, alert=True)


def gate_all(session: Session, article: Article, story: Assignment, matches: Sequence[RuleMatch],
             realert: Mapping[str, str | None], entities: Entities | None = None, seen: str = "") -> list[Verdict]:
    """The verdicts on every match of one article, analysts' mutes first (``alerts.feedback``):
    a rule muted for the article's source gives no verdict (the match is not even recorded); a
    rule muted for its story is recorded and stays quiet; every other match goes through ``gate``."""
    mutes = mutes_for(session, article.source_id, story.story_id) if matches else Mutes()
    return [Verdict(m, alert=False) if m.rule in mutes.story_rules
            else gate(session, article, story, m, realert.get(m.rule), entities, seen)
            for m in matches if m.rule not in mutes.source_rules]


def claim_alert(session: Session, article: Article, rule: str, sentences: Sequence[str],
                realert: str | None, new_story: bool, seen: str = "") -> list[str] | None:
    """Whether this article's match of ``rule`` should alert, and the claim recorded if so.

    None: stay quiet. A list: alert; for a re-alert it holds the new sentences to quote (empty
    for the story's first alert).
    """
    assert article.story_id is not None and article.id is not None
    conn = session.connection()
    fresh: list[str] = []
    if not new_story:
        claimed = driver.run(conn, _CLAIMED, {"story": article.story_id, "rule": rule})[1]
        if claimed is not None:
            if realert != "new_statement":
                return None
            fresh = new_statements(session, article, sentences, seen)
            if not fresh:
                return None
    won: list[str] = []
    now = datetime.now(UTC)
    for sentence in fresh or [""]:
        # No row back: claimed meanwhile by another article or instance (on PostgreSQL the insert
        # waits for a concurrent claimer's transaction, and inserts only if that one rolled back).
        if driver.run(conn, _CLAIM, {"story": article.story_id, "rule": rule, "at": now, "article": article.id,
                                     "statement": statement_key(sentence) if sentence else ""})[1] is not None:
            won.append(sentence)
    if not won:
        return None
    return [w for w in won if w]
