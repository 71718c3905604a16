"""Main text and metadata with trafilatura."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import trafilatura

from monitor.extract.language import detect_language


@dataclass(frozen=True)
class Extracted:
    title: str | None
    text: str
    published: datetime | None
    authors: str | None
    language: str | None
    canonical_url: str | None
    image: str | None = None


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def extract_article(html: bytes | str, url: str | None = None) -> Extracted | None:
    """None when the page holds no article text."""
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                      favor_precision=False, deduplicate=False)
    if doc is None:
        return None
    d = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = (d.get("text") or "").strip()
    if not text:
        return None
    return Extracted(title=d.get("title"), text=text, published=_parse_date(d.get("date")),
                     authors=d.get("author"), language=detect_language(text, d.get("language")),
                     canonical_url=d.get("url"), image=d.get("image"))
