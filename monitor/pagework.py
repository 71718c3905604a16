"""A new page's work in an extraction worker: the extraction, then what the later stages compute
from the page alone, whatever the database holds (``monitor.story.prints``: paragraph keys,
shingles and bands, the content hash; names and figures for event stories; the URL to store).

Why here: the main process stores every article on one thread, and in a burst of new articles
that thread bounds the wall time while the extraction workers wait for it (issue 15: 4.3 s of
CPU in a 4.9 s run, the workers idle half of it). So it only decides and stores; what it would
compute from the page alone comes with the page, for a few kilobytes of pickle. It computes it
itself where no worker ran (the feed's own text, a page that failed), with the same functions.

Composed here, beside the pipeline that composes the stages: the extractor knows no story.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.extract.result import Extracted

if TYPE_CHECKING:
    from monitor.story.result import TextPrints


@dataclass(frozen=True)
class Page:
    """An extracted page, its story prints (for the headline the article is stored with,
    ``stored_title``) and the URL to store it under."""

    extracted: Extracted
    prints: TextPrints
    url: str  # ``parse.urls.preferred_url`` of the feed's link and the page's own canonical URL


def stored_title(headline: str | None, page_title: str | None, url: str) -> str:
    """The title an article is stored with: the feed's for it, else the page's, else its URL
    (``ingest.new_article``); its story prints are made for the same headline."""
    return headline or page_title or url


def work(html: bytes | str, url: str | None, content_type: str | None, timezone: str | None,
         link: str, headline: str | None, events: bool) -> Page | None:
    """In the worker: ``extract_page`` (``url``: where the page was found), then the page's
    story prints (``events``: with its names and figures, which only event stories use) and
    the URL to store (``link``: the feed's)."""
    from monitor.extract.pool import extract_page
    from monitor.parse.urls import preferred_url
    from monitor.story.prints import text_prints

    ex = extract_page(html, url, content_type, timezone)
    if ex is None:
        return None
    url_to_store = preferred_url(link, ex.canonical_url)
    return Page(ex, text_prints(stored_title(headline, ex.title, url_to_store), ex.text, events), url_to_store)


async def extract(html: bytes | str, url: str | None, content_type: str | None, timezone: str | None,
                  link: str, headline: str | None, events: bool) -> Page | None:
    """``work`` in an extraction worker (``monitor.extract.pool.run``)."""
    from monitor.extract import pool

    return await pool.run(work, html, url, content_type, timezone, link, headline, events)
