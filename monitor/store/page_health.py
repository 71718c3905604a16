"""How many of a source's latest articles were stored without their page's text, and why.

A source whose pages cannot be read (a consent or bot wall, a paywall, 403s to crawlers,
timeouts) keeps alerting on its feed's text only, and keeps fetching its pages in vain; each
such article's ``fetch_error`` says why, but nothing summed them per source. ``monitor sources``
and the console's sources page show this, so a user sees which source to set
``full_text = false`` for, or to look at, without reading the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam
from sqlalchemy import select as core_select

from monitor.store.models import Article

RECENT = 20  # a source's latest articles looked at


@dataclass(frozen=True)
class PageHealth:
    recent: int  # the source's latest articles looked at (at most ``RECENT``)
    without_page: int  # of them, stored with the feed's text because their page was not read
    last_reason: str | None  # the newest such article's reason (its ``fetch_error``)

    def line(self) -> str:
        """For a person: "3 of the last 20 articles stored without their page: <reason>"."""
        return (f"{self.without_page} of the last {self.recent} articles stored without their page"
                + (f": {self.last_reason}" if self.last_reason else ""))


def page_health(conn: Connection, source_ids: Iterable[int], recent: int = RECENT) -> dict[int, PageHealth]:
    """Each source's ``PageHealth`` over its latest ``recent`` articles; sources with none, or
    none without its page, are left out. One indexed query per source (a handful to hundreds)."""
    a = Article.__table__.c  # type: ignore[attr-defined]
    latest = (core_select(a.fetch_error).where(a.source_id == bindparam("source"))
              .order_by(a.id.desc()).limit(recent))
    out: dict[int, PageHealth] = {}
    for source_id in source_ids:
        errors = [row[0] for row in conn.execute(latest, {"source": source_id})]
        missed = [e for e in errors if e]
        if missed:
            out[source_id] = PageHealth(len(errors), len(missed), missed[0])
    return out
