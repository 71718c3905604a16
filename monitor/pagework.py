"""A new page's work in an extraction worker: the extraction, then what the later stages compute
from the page alone, whatever the database holds (``monitor.story.prints``: paragraph keys,
shingles and bands, the content hash; names and figures for event stories; the URL to store;
the rules that match it, with their quotes and speakers, and its words for the rule editor).

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
    from monitor.match import Document, RuleMatch, RulesSpec
    from monitor.story.result import TextPrints


@dataclass(frozen=True)
class MatchJob:
    """What a worker needs besides the page to match it as the daemon would (``ingest.document_of``):
    the rules, the source's name and the feed entry's author (the page's own comes first)."""

    rules: RulesSpec
    source: str
    author: str | None


@dataclass(frozen=True)
class Matched:
    """The page's matches, made in its worker: with the rules named ``rules`` (``RulesSpec.key``)
    on ``doc``. The daemon takes them only for an article whose document is ``doc`` and with those
    rules still in force (``ingest.Ingest.run``); otherwise it matches the article itself."""

    rules: str
    doc: Document
    matches: tuple[RuleMatch, ...]
    terms: str  # ``match.text.terms`` of the document: the words stored for the rule editor


@dataclass(frozen=True)
class Page:
    """An extracted page, its story prints (for the headline the article is stored with,
    ``stored_title``), the URL to store it under, and its matches (``match_page``)."""

    extracted: Extracted
    prints: TextPrints
    url: str  # ``parse.urls.preferred_url`` of the feed's link and the page's own canonical URL
    matched: Matched | None = None


def stored_title(headline: str | None, page_title: str | None, url: str) -> str:
    """The title an article is stored with: the feed's for it, else the page's, else its URL
    (``ingest.new_article``); its story prints are made for the same headline."""
    return headline or page_title or url


def work(html: bytes | str, url: str | None, content_type: str | None, timezone: str | None,
         link: str, headline: str | None, events: bool, match: MatchJob | None = None) -> Page | None:
    """In the worker: ``extract_page`` (``url``: where the page was found), then the page's
    story prints (``events``: with its names and figures, which only event stories use), the
    URL to store (``link``: the feed's) and, with ``match``, its matches (``match_page``)."""
    from monitor.extract.pool import extract_page
    from monitor.parse.urls import preferred_url
    from monitor.story.prints import text_prints

    ex = extract_page(html, url, content_type, timezone)
    if ex is None:
        return None
    url_to_store = preferred_url(link, ex.canonical_url)
    page = Page(ex, text_prints(stored_title(headline, ex.title, url_to_store), ex.text, events), url_to_store)
    return page if match is None else match_page(page, match)


def page_document(page: Page, source: str, author: str | None) -> Document:
    """What a rule sees of the article stored from ``page`` (``ingest.document_of`` of
    ``ingest.new_article``'s row: the stored title, the page's text, language and authors, else
    the feed's author), without its meaning vector (``MatchJob``'s rules have no about())."""
    from urllib.parse import urlsplit

    from monitor.match import Document

    ex = page.extracted
    return Document(title=page.prints.title, body=ex.text, url=page.url, site=urlsplit(page.url).hostname or "",
                    source=source, lang=ex.language, author=ex.authors or author or "")


def match_page(page: Page, job: MatchJob) -> Page:
    """``page`` with its matches (quotes and speakers) and stored words: the rule work of its
    article, done here instead of on the daemon's one ingest thread, which otherwise spent a
    quarter of its time on it (issue 15)."""
    from dataclasses import replace

    from monitor.match import rules_of_spec
    from monitor.match.evaluate import DocIndex
    from monitor.match.text import terms_of

    doc = page_document(page, job.source, job.author)
    ix = DocIndex(doc)
    matches = tuple(rules_of_spec(job.rules).match(ix))
    return replace(page, matched=Matched(job.rules.key, doc, matches, terms_of(ix.uniq)))


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
    once for all of them (the forkserver spends ~40 ms on this page). Matched too, by a rule
    that quotes it: the rule engine and the English speaker patterns are then loaded once, and
    shared by the workers (~8 MB)."""
    import pickle

    from monitor.match import RulesSpec

    rules = pickle.dumps(([("warm-up", "talks")], {}))
    work(SAMPLE, "https://news.example.com/world/talks?ref=feed", "text/html; charset=utf-8", None,
         "https://news.example.com/world/talks", None, True,  # events on, as by default
         MatchJob(RulesSpec("warm-up", rules), "warm-up", None))


async def extract(html: bytes | str, url: str | None, content_type: str | None, timezone: str | None,
                  link: str, headline: str | None, events: bool, match: MatchJob | None = None) -> Page | None:
    """``work`` in an extraction worker (``monitor.extract.pool.run``)."""
    from monitor.extract import pool

    return await pool.run(work, html, url, content_type, timezone, link, headline, events, match)
