"""Each rule's matches as Atom and JSON Feed, opened by a per-feed secret token.

A feed reader cannot log in, so the URL carries the credential: a random token shown once when
created. Only its SHA-256 is stored, so the database never holds a usable secret; revoking marks
the row and the URL stops working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import Engine
from sqlmodel import col, select

from monitor.store.db import session_scope
from monitor.store.models import Article, FeedToken, Match, Source

ITEMS = 50


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, rule: str) -> str:
    token = secrets.token_urlsafe(24)
    with session_scope(engine) as s:
        s.add(FeedToken(rule=rule, token_hash=_digest(token)))
    return token


def revoke(engine: Engine, token_id: int) -> bool:
    with session_scope(engine) as s:
        row = s.get(FeedToken, token_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = datetime.now(UTC)
        s.add(row)
    return True


def tokens(engine: Engine, rule: str) -> list[FeedToken]:
    with session_scope(engine) as s:
        return list(s.exec(select(FeedToken).where(FeedToken.rule == rule, col(FeedToken.revoked_at).is_(None))
                           .order_by(col(FeedToken.id))).all())


def token_ok(engine: Engine, rule: str, token: str) -> bool:
    digest = _digest(token)
    with session_scope(engine) as s:
        rows = s.exec(select(FeedToken.token_hash).where(FeedToken.rule == rule,
                                                         col(FeedToken.revoked_at).is_(None))).all()
    return any(hmac.compare_digest(digest, h) for h in rows)


def _items(engine: Engine, rule: str) -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        cols: list[Any] = [Match, Article.title, Article.url, Article.published, Source.name]
        rows = s.exec(select(*cols)
                      .join(Article, col(Article.id) == col(Match.article_id))
                      .join(Source, col(Source.id) == col(Article.source_id))
                      .where(Match.rule == rule).order_by(col(Match.created_at).desc(), col(Match.id).desc())
                      .limit(ITEMS)).all()
    out = []
    for m, title, url, published, outlet in rows:
        created = m.created_at if m.created_at.tzinfo else m.created_at.replace(tzinfo=UTC)
        quote = m.quote or ""
        summary = (f"“{quote}”" + (f" — {m.speaker}" if m.speaker else "") + f" ({outlet})") if quote else outlet
        out.append({"id": f"urn:monitor:match:{m.id}", "title": title, "url": url, "summary": summary,
                    "updated": created, "published": published, "outlet": outlet})
    return out


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def atom(engine: Engine, rule: str, self_url: str) -> str:
    items = _items(engine, rule)
    updated = (items[0]["updated"] if items else datetime.now(UTC)).isoformat()
    entries = "".join(
        f"<entry><id>{escape(it['id'])}</id><title>{escape(it['title'])}</title>"
        f"<link href=\"{_attr(it['url'])}\"/><updated>{it['updated'].isoformat()}</updated>"
        f"<author><name>{escape(it['outlet'])}</name></author>"
        f"<summary>{escape(it['summary'])}</summary></entry>" for it in items)
    return ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<id>urn:monitor:rule:{escape(rule)}</id><title>monitor: {escape(rule)}</title>"
            f"<updated>{updated}</updated><link rel=\"self\" href=\"{_attr(self_url)}\"/>"
            f"{entries}</feed>\n")


def json_feed(engine: Engine, rule: str, self_url: str) -> str:
    items = _items(engine, rule)
    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"monitor: {rule}",
        "feed_url": self_url,
        "items": [{"id": it["id"], "url": it["url"], "title": it["title"], "content_text": it["summary"],
                   "date_modified": it["updated"].isoformat(),
                   "authors": [{"name": it["outlet"]}]} for it in items],
    }, ensure_ascii=False)
