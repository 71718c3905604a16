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
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam
from sqlalchemy import select as core_select

from monitor.store.source_table import ARTICLE_KEYS

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


@lru_cache(maxsize=4)
def _latest(recent: int) -> Any:
    a = ARTICLE_KEYS.c
    return core_select(a.fetch_error).where(a.source_id == bindparam("source")).order_by(a.id.desc()).limit(recent)


def latest_page_errors(conn: Connection, source_id: int, recent: int = RECENT) -> list[str | None]:
    """The ``fetch_error`` of the source's latest ``recent`` articles, newest first (None: its
    page was read). Core, without the ORM: a poll asks it (``Pipeline._walled``)."""
    return [row[0] for row in conn.execute(_latest(recent), {"source": source_id})]


def page_health(conn: Connection, source_ids: Iterable[int], recent: int = RECENT) -> dict[int, PageHealth]:
    """Each source's ``PageHealth`` over its latest ``recent`` articles; sources with none, or
    none without its page, are left out. One indexed query per source (a handful to hundreds)."""
    out: dict[int, PageHealth] = {}
    for source_id in source_ids:
        errors = latest_page_errors(conn, source_id, recent)
        missed = [e for e in errors if e]
        if missed:
            out[source_id] = PageHealth(len(errors), len(missed), missed[0])
    return out
