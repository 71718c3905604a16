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

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from monitor.clean import tags_to_spaces
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
         link: str, headline: str | None, events: bool, feed_html: str = "") -> Page | None:
    """In the worker: ``extract_page`` (``url``: where the page was found), the feed's own text
    of the entry added where the page does not hold it (``feed_html``: ``missing_feed_text``),
    then the page's story prints (``events``: with its names and figures, which only event
    stories use) and the URL to store (``link``: the feed's)."""
    from monitor.extract.pool import extract_page
    from monitor.parse.urls import preferred_url
    from monitor.story.prints import text_prints

    ex = extract_page(html, url, content_type, timezone)
    if ex is None:
        return None
    if feed_html and (missing := missing_feed_text(ex.text, feed_html)):
        if len(_words(ex.text)) < NOT_ARTICLE_WORDS:
            raise NotTheArticle(NOT_THE_ARTICLE)
        ex = replace(ex, text=f"{ex.text}\n\n{missing}")
    url_to_store = preferred_url(link, ex.canonical_url)
    return Page(ex, text_prints(stored_title(headline, ex.title, url_to_store), ex.text, events), url_to_store)


# A feed's text of an entry (its summary, or all of it) is taken from the article it links: of
# its distinct words of four letters or more (pairs of characters in Chinese and Japanese), a
# page that is that article holds most. Measured on the 51 real pages of ../shared/data/articles
# whose description meta (what a feed's summary is made from) has 12 such words or more: the
# page's own text holds 50 % of them or more, except two pages of a site whose description is
# one blurb about the site (12 % and 23 %); another page's text, in the same language, holds
# 12 % of them (median; 90th percentile 29 %). A third, and at least 12 words: below it the page
# is taken for something else (a consent or bot wall, an error page served as 200, a shell a
# script would fill), and the feed's text is added to it.
#
# Such a page shorter than ``NOT_ARTICLE_WORDS`` is not the article at all (consent walls run to
# 100-300 words; an article whose feed summary is its own lede holds that lede): the article is
# the feed's text alone, as for a page that could not be fetched. Kept beside it, the wall's
# text made every article of that outlet a copy of the first (one story, one alert for two
# unrelated reports). A longer page may be the article under an unrelated summary (a promotion,
# another language): the feed's text is kept after the page's, nothing is lost.
MIN_FEED_UNITS = 12
FEED_TEXT_HELD = 1 / 3
NOT_ARTICLE_WORDS = 400
FEED_TEXT_LOOKED_AT = 20_000  # characters of the feed's text compared (a summary is far shorter)


NOT_THE_ARTICLE = "the page does not hold the feed's text of the entry (a consent or bot wall, an error page?)"


class NotTheArticle(Exception):
    """The page is something else than the article its feed entry describes (``NOT_THE_ARTICLE``)."""


def _words(text: str) -> list[str]:
    from monitor.story.near import tokens

    return tokens(text)


def _units(text: str) -> set[str]:
    from monitor.story.near import spaceless

    words = _words(text)
    if spaceless(" ".join(words[:64])):
        return {a + b for a, b in zip(words, words[1:], strict=False)}
    return {w for w in words if len(w) >= 4}


def missing_feed_text(page_text: str, feed_html: str) -> str | None:
    """The feed's text of the entry (``feed_html``, as ``FeedEntry.content_html``) when the
    page's text does not hold it (``FEED_TEXT_HELD``), else None. A page that is not the
    article (a consent wall, above all, which servers of news sites in Europe answer a crawler
    with) lost the statement a feed's summary carried: the article was stored with the wall's
    text, and a rule on the statement never matched. ``work`` keeps it after a long page's text
    and stores it instead of a short page (``NOT_ARTICLE_WORDS``)."""
    rough = tags_to_spaces(feed_html[:FEED_TEXT_LOOKED_AT])
    if len(rough) < 2 * MIN_FEED_UNITS:
        return None
    fed = _units(rough)
    if len(fed) < MIN_FEED_UNITS or len(fed & _units(page_text)) >= FEED_TEXT_HELD * len(fed):
        return None
    from monitor.parse.feed import html_to_text  # imported by a worker the first time only

    return html_to_text(feed_html) or None


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
                  link: str, headline: str | None, events: bool, feed_html: str = "") -> Page | None:
    """``work`` in an extraction worker (``monitor.extract.pool.run``)."""
    from monitor.extract import pool

    return await pool.run(work, html, url, content_type, timezone, link, headline, events, feed_html)
