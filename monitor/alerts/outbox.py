"""Write the match, its alert and its deliveries in one transaction (the outbox pattern)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from sqlmodel import Session

from monitor.match import RuleMatch
from monitor.store.models import Alert, Article, Delivery, Match, Source


def enqueue_alert(session: Session, article: Article, source: Source, match: RuleMatch,
                  channels: tuple[str, ...]) -> Alert:
    """Caller owns the transaction; nothing is sent here."""
    assert article.id is not None
    first = match.statements[0] if match.statements else None
    m = Match(article_id=article.id, rule=match.rule,
              hits=[asdict(h) for h in match.hits],
              statements=[asdict(s) for s in match.statements],
              field=first.field if first else (match.hits[0].field if match.hits else None),
              speaker=match.speaker, quote=first.text if first else None)
    session.add(m)
    session.flush()
    assert m.id is not None
    key = f"{match.rule}:{article.id}"
    payload = {
        "rule": match.rule,
        "title": article.title,
        "url": article.url,
        "outlet": source.name,
        "published": article.published.astimezone(UTC).isoformat() if article.published else None,
        "statements": [{"text": s.text, "highlights": [list(h) for h in s.highlights], "speaker": s.speaker,
                        "field": s.field} for s in match.statements],
        "speaker": match.speaker,
        "terms": sorted({h.text for h in match.hits}),
    }
    alert = Alert(key=key, match_id=m.id, rule=match.rule, payload=payload)
    session.add(alert)
    session.flush()
    assert alert.id is not None
    now = datetime.now(UTC)
    for ch in channels:
        session.add(Delivery(key=f"{key}:{ch}", alert_id=alert.id, channel=ch, next_attempt_at=now))
    return alert
