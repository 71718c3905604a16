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


_PARAGRAPHS = ("The foreign minister said on Tuesday that the talks would resume in Astana next week.",
               "Both delegations agreed on the agenda and on the role of the observers, officials said.",
               "\u201cWe expect a first round of results by the end of the month,\u201d a spokesman told reporters.",
               "The previous round, held in March, ended without an agreement on the border crossings.")
# A page as news sites write them: metadata, byline, body container, boilerplate; its date only
# in an attribute (so htmldate searches the whole page, as on pages whose metadata has no date).
SAMPLE = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Talks to resume | Example News</title>"
          "<meta property='og:title' content='Talks to resume'><meta property='og:image' content='/talks.jpg'>"
          "<link rel='canonical' href='https://news.example.com/world/talks'>"
          "<script type='application/ld+json'>{\"@type\": \"NewsArticle\", \"headline\": \"Talks to resume\"}"
          "</script></head><body><header><nav><a href='/'>Home</a> <a href='/world'>World</a></nav></header>"
          "<main><article class='article-body'><h1>Talks to resume</h1><p class='byline'>By Ann Reporter</p>"
          "<div class='meta' data-updated='2024-05-07 10:00:00'></div>"
          + "".join(f"<p>{p}</p>" for p in _PARAGRAPHS)
          + "</article></main><footer><p>Subscribe to our newsletter</p></footer></body></html>").encode()


def warm_up() -> None:
    """``work`` on ``SAMPLE``, in the extraction workers' forkserver (``monitor.extract.warm``),
    before it forks them. A worker's first page did work that every later page skips: reading
    the public-suffix list (for the URL to store), compiling ~60 regular expressions, importing
    the story's modules: ~60 ms of CPU, ten pages' worth, in every worker. Done here, it is done
    once for all of them (the forkserver spends ~40 ms on this page)."""
    work(SAMPLE, "https://news.example.com/world/talks?ref=feed", "text/html; charset=utf-8", None,
         "https://news.example.com/world/talks", None, True)  # events on, as by default


async def extract(html: bytes | str, url: str | None, content_type: str | None, timezone: str | None,
                  link: str, headline: str | None, events: bool) -> Page | None:
    """``work`` in an extraction worker (``monitor.extract.pool.run``)."""
    from monitor.extract import pool

    return await pool.run(work, html, url, content_type, timezone, link, headline, events)
