"""Main text and metadata of an article page: trafilatura plus three corrections.

trafilatura is the best open-source extractor on the benchmark, and its precision mode the best
of its modes (``python -m bench.extract``). What it still gets wrong on news pages, and what we
correct, each measured on ../shared/data/articles:

- hidden pop-ups inside paragraphs (The Hill's "rollover" people cards, ``hidden`` and
  ``display:none`` elements) are read as text: removed before extraction;
- a body split into several sibling containers by ad slots (Wired) is cut after the first:
  when a page has several outermost ``article-body``-like containers, the text extracted from
  all of them replaces the first one's if it contains it;
- short newsletter / "You may also like" / comment prompts are dropped from the text. (The
  headline stays when the page repeats it: the benchmark does not count it, but an alert
  should be able to quote it.)

lxml is not thread-safe: call this from one thread at a time (the pipeline's ``_EXTRACT_POOL``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, AnyStr
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from monitor.clean import web_url
from monitor.extract import speedups
from monitor.extract.language import detect_language
from monitor.extract.result import Extracted
from monitor.parse.dates import parse_date
from monitor.parse.encoding import decode, fix_mojibake

# The pop-up part of a hover card, not its trigger ("rollover-people-block", not "rollover-people").
_POPUP_CLASS = re.compile(r"(^|\s)([\w-]*(tooltip|rollover|popover|hovercard)[\w-]*[-_](block|content|body|card|text|"
                          r"inner|box|panel|container|wrapper|popup)|tooltiptext|hovercard|popover)(\s|$)", re.I)
_BODY_CLASS = re.compile(r"(^|\s)[\w-]*(article|story|post|entry)(__|[-_])?(body|content|text)(\s|$)", re.I)
_BOILERPLATE = re.compile(
    r"^(you may also like|related( articles| stories| coverage| content)?|more from [\w ]+|read more|"
    r"recommended( for you)?|tell us what you think|comments?|sorry!?|thanks for signing up!?|"
    r"advertisement|share this( article| story)?|follow us)\W*$"
    r"|subscribe|newsletter|sign up for|click here|have a tip\?|all rights reserved|^©",
    re.I,
)
_DATE_META = ("article:published_time", "og:published_time", "datepublished", "pubdate", "publishdate",
              "publish_date", "parsely-pub-date", "sailthru.date", "dc.date", "dc.date.issued", "date",
              "dcterms.created", "article.published")


# Parsed once, the way trafilatura parses (no comments, no processing instructions), and the tree
# itself handed to trafilatura: no serialising and parsing again.
_PARSER = lxml.html.HTMLParser(collect_ids=False, default_doctype=False, remove_comments=True, remove_pis=True)
# lxml.html's own lookup picks each element's Python class in Python (FormElement for <form> and
# the like), every time lxml makes a Python object of an element: ~0.3 ms a page in trafilatura's
# searches. In C here: every element an HtmlElement (trafilatura uses none of the form classes).
_PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(
    element=lxml.html.HtmlElement, comment=lxml.html.HtmlComment, pi=lxml.html.HtmlProcessingInstruction,
    entity=lxml.html.HtmlEntity))
# XPath (in C) narrows every element of the page down to the few that can match the regexes
# below. Lower-casing each element's class in XPath costs ~7 ms on a large page, so a search of
# the lower-cased page (a few hundredths of that) narrows it first: the XPath tests only the
# words the page contains at all, each as the page spells it. A word written with character
# references (``tool&#116;ip``) escapes the narrowing (the pop-up then stays in the text); a
# page whose length lower-casing changes (a dotted capital I) gets the full XPath.
_LOWER = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
_POPUP_WORDS = ("tooltip", "rollover", "popover", "hovercard")
_BODY_WORDS = ("body", "content", "text")
_RAW_DISPLAY_NONE = re.compile(r"d *i *s *p *l *a *y *: *n *o *n *e", re.I)  # spaces: see _clean_tree
_RAW_BODY = re.compile(r"(?:article|story|post|entry)(?:__|[-_])?(?:body|content|text)")  # in the lower-cased page
_RAW_BODY_BYTES = re.compile(_RAW_BODY.pattern.encode())
_RAW_DISPLAY_NONE_BYTES = re.compile(_RAW_DISPLAY_NONE.pattern.encode())  # in the lower-cased bytes
# The characters beyond ASCII that lower-case to a letter of the words searched (İ) or match one
# in a regex that ignores case (also ı, ſ), in UTF-8 (a test checks every character).
_TO_ASCII = tuple(c.encode() for c in "\u0130\u0131\u017f")


@lru_cache(maxsize=256)
def _maybe_hidden(popup: tuple[str, ...] | None, display: bool) -> etree.XPath:
    """``popup``: the spellings of the pop-up words in the page (None: test every case)."""
    if popup is None:
        names = f"concat({_LOWER.format('@class')}, ' ', {_LOWER.format('@id')})"
        clauses = [f"contains({names}, '{w}')" for w in _POPUP_WORDS]
    else:
        clauses = [f"contains(@{a}, '{w}')" for w in popup for a in ("class", "id")]
    if display:
        clauses.append(f"(@style and contains({_LOWER.format('@style')}, 'display'))")
    return etree.XPath(f".//*[{' or '.join(['@hidden', *clauses])}]")


@lru_cache(maxsize=256)
def _maybe_body(found: tuple[str, ...] | None) -> etree.XPath:
    """``found``: the spellings of body-class words in the page (None: test every case)."""
    if found is None:
        clauses = [f"contains({_LOWER.format('@class')}, '{w}')" for w in _BODY_WORDS]
    else:
        clauses = [f"contains(@class, '{w}')" for w in found]
    clauses.insert(0, "@itemprop = 'articleBody'")
    return etree.XPath(f"descendant-or-self::*[{' or '.join(clauses)}]")


@dataclass(frozen=True)
class _Raw:
    """The raw page, for narrowing the XPath searches: ``text``, the page as searched (its UTF-8
    bytes, or on a few pages ``html`` itself, see ``of``), and ``low``, ``text`` lower-cased."""

    html: str
    text: str | bytes
    low: str | bytes

    @classmethod
    def of(cls, html: str) -> _Raw:
        """Searched as bytes where that finds exactly what searching the text finds: lower-casing
        the page's UTF-8 bytes takes ~40 us on bench.ingest's pages, its text ~140 us (three in
        four pages hold non-ASCII characters, where ``str.lower`` is slow). The words searched
        are ASCII, and only three characters beyond ASCII lower-case to one of their letters
        (İ, to two characters) or match one in a case-blind regex (ı, ſ): the few pages that hold
        one are searched as text, as before. (Looked for only where their first UTF-8 byte is.)"""
        data = html.encode("utf-8", "surrogatepass")
        if (b"\xc4" in data or b"\xc5" in data) and any(c in data for c in _TO_ASCII):
            return cls(html, html, html.lower())
        return cls(html, data, data.lower())

    @property
    def exact(self) -> bool:
        """Whether an offset in ``low`` is the same offset in ``text``."""
        return len(self.low) == len(self.text)

    def _spelled(self, start: int, end: int) -> str:
        found = self.text[start:end]
        return found if isinstance(found, str) else found.decode("ascii")

    def _starts(self, word: str) -> Iterator[int]:
        """Where ``word`` starts in ``low``."""
        return _occurrences(self.low, word) if isinstance(self.low, str) else _occurrences(self.low, word.encode())

    def spellings(self, words: tuple[str, ...]) -> tuple[str, ...] | None:
        if not self.exact:
            return None
        return tuple(sorted({self._spelled(i, i + len(w)) for w in words for i in self._starts(w)}))

    def body_spellings(self) -> tuple[str, ...] | None:
        if not self.exact:
            return None
        found = set()
        for w in ("article", "story", "post", "entry"):  # str.find is faster than the regex's own scan
            for i in self._starts(w):
                m = _RAW_BODY.match(self.low, i) if isinstance(self.low, str) else _RAW_BODY_BYTES.match(self.low, i)
                if m:
                    found.add(self._spelled(i, m.end()))
        return tuple(sorted(found))

    def hides(self) -> bool:
        """Whether ``display: none`` (in any case and spacing) is written anywhere in the page."""
        if isinstance(self.low, str):
            return "display" in self.low and _RAW_DISPLAY_NONE.search(self.html) is not None
        return b"display" in self.low and _RAW_DISPLAY_NONE_BYTES.search(self.low) is not None


def _occurrences(text: AnyStr, word: AnyStr) -> Iterator[int]:
    i = text.find(word)
    while i >= 0:
        yield i
        i = text.find(word, i + 1)


# Characters of a <meta> value kept (a title, a byline, a description, a date: far shorter).
# trafilatura strips tags from every head <meta> value with ``<[^>]*>``, which is quadratic on a
# value of many "<" without ">": a 100 KB author meta of "&lt;" cost 5.8 s a search, twice, and
# 400 KB 12 s a page, so a few such pages held the extraction workers for minutes.
MAX_META_CHARS = 2000


def _clean_tree(raw: _Raw) -> etree._Element | None:
    try:
        doc = lxml.html.fromstring(raw.html, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return None
    for meta in _every(doc, "meta"):
        if len(content := meta.get("content") or "") > MAX_META_CHARS:
            meta.set("content", content[:MAX_META_CHARS])
    for el in _maybe_hidden(raw.spellings(_POPUP_WORDS), raw.hides())(doc):
        if el.getparent() is None:
            continue
        style = (el.get("style") or "").replace(" ", "").lower()
        names = f"{el.get('class') or ''} {el.get('id') or ''}"
        if el.get("hidden") is not None or "display:none" in style or _POPUP_CLASS.search(names):
            el.drop_tree()
    return doc


def _body_containers(doc: etree._Element, raw: _Raw) -> list[etree._Element]:
    found = [el for el in _maybe_body(raw.body_spellings())(doc)
             if el.get("itemprop") == "articleBody" or _BODY_CLASS.search(el.get("class") or "")]
    marked = set(found)
    return [el for el in found if not any(a in marked for a in el.iterancestors())]


def _tidy(text: str) -> str:
    out = []
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            continue
        if len(s) < 200 and _BOILERPLATE.search(s):
            continue
        out.append(line)
    return "\n".join(out).strip()


def _words(text: str) -> set[tuple[str, ...]]:
    tokens = re.findall(r"\w+", text)
    return {tuple(tokens[i:i + 4]) for i in range(max(0, len(tokens) - 3))}


_SETTINGS: dict[str, Any] = {"favor_precision": True, "include_comments": False, "deduplicate": False}


def _extract(html: str | etree._Element, url: str | None, with_metadata: bool = False) -> Any:
    # (trafilatura copies a tree it is given before changing it: ``doc`` stays usable)
    import trafilatura  # here, not at the top: the daemon's own process never extracts

    speedups.apply()
    if with_metadata:
        return trafilatura.bare_extraction(html, url=url, with_metadata=True, **_SETTINGS)
    return trafilatura.bare_extraction(html, options=_options(url))


@lru_cache(maxsize=1)
def _template() -> Any:
    from trafilatura.core import Extractor

    return Extractor(output_format="python", precision=True, comments=False, dedup=False)


def _options(url: str | None) -> Any:
    """The options ``bare_extraction`` makes of ``_SETTINGS`` and ``url``, copied from ones made
    once: making them reads trafilatura's numbers from its ConfigParser (~80 us a page, twice on a
    page with several body containers). Without metadata: the options' date settings (today's
    date as the latest, fixed when made) are only read for the metadata."""
    options = copy.copy(_template())
    options.url = url
    # as Extractor.__init__ spells the URL for its log lines
    options.source = url and url.encode("utf-8", "replace").decode("utf-8")
    return options


@dataclass
class _Metadata:
    """The fields of trafilatura's metadata that we use, found as ``extract_metadata`` finds them.

    ``extract_metadata`` also reads the site name, categories, tags and licence, and always
    searches the whole page for a date (htmldate): ~3 ms of a page's ~27 (bench.ingest's pages)
    went there, for fields we never read and a date we read only when the page's own metadata
    has none (``_page_date``). So the same functions are called here, in the same order, for title,
    author and image, and htmldate only when asked for the date. The author, when the page's
    metadata names none, is searched last (``author``), in the page itself rather than in a copy."""

    title: str | None
    _author: str | None
    image: str | None
    _date: str | None  # known already (trafilatura read the metadata), else searched when asked
    _declared_url: str | None  # og:url etc., as trafilatura's meta tags reading found it
    _url: str | None
    _tree: etree._Element | None
    _search_author: bool = False

    @classmethod
    def read(cls, tree: etree._Element, url: str | None) -> _Metadata:
        from trafilatura import metadata as m

        speedups.apply()
        found = m.examine_meta(tree)
        if found.author and " " not in found.author:
            found.author = None
        with contextlib.suppress(Exception):  # as extract_metadata: bugs in trafilatura's JSON-LD reading
            found = m.extract_meta_json(tree, found)
        if not found.title:
            found.title = m.extract_title(tree)
        return cls(_trim(found.title), _trim(found.author), _trim(found.image), None, found.url, url, tree,
                   not found.author)

    @classmethod
    def of(cls, result: Any) -> _Metadata:
        """The metadata trafilatura read itself (``bare_extraction(with_metadata=True)``)."""
        return cls(result.title, result.author, result.image, result.date, None, None, None)

    def author(self) -> str | None:
        """The author; where the page's metadata names none, trafilatura's search of the page
        (``extract_author``) but in the page itself, not a copy of it (~0.13 ms a page): it
        removes elements from the page, so nothing may read the page after this."""
        if not self._search_author or self._tree is None:
            return self._author
        self._search_author = False
        if not _AUTHOR_ANY(self._tree):
            self._tree = None
            return self._author  # None: the page names no author
        from trafilatura import metadata as m

        found = m.extract_metainfo(m.prune_unwanted_nodes(self._tree, m.AUTHOR_DISCARD_XPATHS), m.AUTHOR_XPATHS,
                                   len_limit=120)
        self._author = _trim(m.normalize_authors(None, found) if found else found)
        self._tree = None
        return self._author

    def date(self) -> str | None:
        """htmldate's reading of the page, as ``extract_metadata`` would give it."""
        if self._tree is None:
            return self._date
        from htmldate import find_date
        from trafilatura.metadata import extract_url
        from trafilatura.settings import DEFAULT_CONFIG, set_date_params

        params = set_date_params(DEFAULT_CONFIG.getboolean("DEFAULT", "EXTENSIVE_DATE_SEARCH"))
        params["url"] = self._declared_url or extract_url(self._tree, self._url)
        return _trim(find_date(self._tree, **params))


# Whether any element of the page could be selected by trafilatura's author searches
# (``AUTHOR_XPATHS``, in ``AUTHOR_ANY_OF``): an ``author`` element, an element with a ``rel``
# child (``rel='me'``), or one whose attributes those searches test holds one of the words their
# tests look for (each of their regexes is a choice of literal words; ``[Aa]uthor``, two). Their
# tests read only these attributes and children, and the search removes elements before it
# looks (``AUTHOR_DISCARD_XPATHS``) but changes none: where nothing here is found, the search
# finds nothing. 263 of bench.ingest's 299 pages name no author in their metadata and 248 of
# them hold no such element: for them this one walk over the page's attributes replaces the
# removal and three searches (callgrind, a worker's whole page: 50.4 -> 49.4 M instructions on
# average). A test checks that the searches are still the ones written out in
# ``AUTHOR_ANY_OF``, and every test of theirs here.
_AUTHOR_CLASS_WORDS = ("author", "Author", "byl", "Byline", "BBL", "username", "channel-name", "zuozhe", "bianji",
                       "xiaobian", "submitted-by", "posted-by", "journalist-name", "screenname", "writer")
_AUTHOR_ID_WORDS = ("author", "Author", "zuozhe", "bianji", "xiaobian")


def _contains_any(attribute: str, words: tuple[str, ...]) -> str:
    return f"//@{attribute}[{' or '.join(f'contains(., {w!r})' for w in words)}]"


_AUTHOR_ANY = etree.XPath("boolean(" + " | ".join([
    "//author", "//rel", _contains_any("class", _AUTHOR_CLASS_WORDS), _contains_any("id", _AUTHOR_ID_WORDS),
    _contains_any("itemprop", ("author",)), _contains_any("data-component", ("Byline",)),
    "//@rel[. = 'author']", "//@data-testid[. = 'AuthorCard' or . = 'AuthorURL']"]) + ")")
# trafilatura's author searches (2.3) that ``_AUTHOR_ANY`` covers, as written there
AUTHOR_ANY_OF = (
    """//*[self::a or self::address or self::div or self::link or self::p or self::span or self::strong][
    @rel='author' or @id='author' or @class='author' or @itemprop='author name' or rel='me' or
    @data-testid='AuthorCard' or @data-testid='AuthorURL' or
    re:test(@class, 'author-?name|AuthorName|authorName')]|//author""",
    """//*[self::a or self::div or self::h3 or self::h4 or self::p or self::span][
    @class='byline' or @class='username' or @class='byl' or @class='BBL' or
    contains(@itemprop, 'author') or
    re:test(@id, 'author|zuozhe|bianji|xiaobian') or
    re:test(@class, 'author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name')]""",
    """//*[
    contains(@data-component, 'Byline') or contains(@itemprop, 'author') or
    re:test(@id, '[Aa]uthor') or
    re:test(@class, '[Aa]uthor|screenname|writer|[Bb]yline')]""",
)


def _trim(value: str | None) -> str | None:
    """``Document.clean_and_trim`` for one field."""
    if not isinstance(value, str):
        return value
    from html import unescape

    from trafilatura.utils import line_processing

    if len(value) > 10000:
        value = value[:9999] + "…"
    return line_processing(unescape(value))


def _searched_date(found: str, timezone: str | None, language: str | None) -> datetime | None:
    """htmldate's search of a page whose metadata has no date, unless it gave the first of a
    month. Its last resorts are a year-month in the page (the 1st of that month), the copyright
    year of its footer, any year it mentions (each the 1st of January): a fresh article on a
    site with "(c) 2026" at the bottom was dated 2026-01-01, past ``alert_max_age`` (two days),
    and never alerted. Such an article now takes the time it was first seen, as an undated one
    does (``published_estimated``): so does one truly published on the 1st that only this
    search dates, which for a fresh article is within a poll of the truth."""
    dt = parse_date(found, timezone, language)
    return None if dt is None or dt.day == 1 else dt


def _page_date(doc: etree._Element | None, language: str | None, timezone: str | None) -> datetime | None:
    """The publication time from the page's own metadata (JSON-LD, meta tags, <time>), read with
    the page's language and the source's timezone. htmldate's reading of the whole page is
    trafilatura's metadata date: the caller falls back to it (searching the page twice cost
    as much as a third of the extraction on some pages)."""
    if doc is not None:
        for node in _every(doc, "script"):
            if node.get("type") == "application/ld+json":
                found = _jsonld_date(node.text_content())
                if found and (dt := parse_date(found, timezone, language)):
                    return dt
        for meta in _every(doc, "meta"):
            key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
            if key in _DATE_META and (content := meta.get("content")) is not None and (
                    dt := parse_date(content, timezone, language)):
                return dt
        for t in _every(doc, "time"):
            if (value := t.get("datetime")) is not None and (dt := parse_date(value, timezone, language)):
                return dt
    return None


def _every(doc: etree._Element, tag: str) -> Any:
    """Every ``tag`` element of ``doc``'s page in document order, as XPath's ``//tag`` finds them:
    lxml's iteration in C is twice as fast as the XPath's node-sets (~10 us a search a page)."""
    return doc.getroottree().getroot().iter(tag)


_CANONICAL = str.maketrans("CANOIL", "canoil")  # XPath's translate(@rel, "CANONICAL", "canonical")
_XML_SPACE = re.compile(r"[ \t\r\n]+")  # what XPath's normalize-space() folds


def _declared_url(doc: etree._Element | None, url: str | None) -> str | None:
    """The page's own word on its URL: rel=canonical, else og:url (absolute, http(s) only)."""
    if doc is None:
        return None
    for href in _url_candidates(doc):
        absolute = urljoin(url or "", href.strip())
        if absolute.startswith(("http://", "https://")):
            return absolute
    return None


def _url_candidates(doc: etree._Element) -> list[str]:
    """The hrefs of rel=canonical links, then the og:url contents, in page order (as the XPaths
    ``//link[@href][contains(concat(" ", normalize-space(translate(@rel, "CANONICAL", "canonical")),
    " "), " canonical ")]/@href`` and ``//meta[@property="og:url" or @name="og:url"]/@content``)."""
    found = [href for link in _every(doc, "link") if (href := link.get("href")) is not None
             and " canonical " in f" {_XML_SPACE.sub(' ', (link.get('rel') or '').translate(_CANONICAL)).strip(' ')} "]
    return found + [content for meta in _every(doc, "meta") if "og:url" in (meta.get("property"), meta.get("name"))
                    and (content := meta.get("content")) is not None]


def _jsonld_date(raw: str) -> str | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if isinstance(x.get("datePublished"), str):
                return str(x["datePublished"])
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return None


def extract_article(html: bytes | str, url: str | None = None, content_type: str | None = None,
                    timezone: str | None = None) -> Extracted | None:
    """None when the page holds no article text. ``timezone``: the source's, for page dates
    written without one (else the zone usual for the text's language)."""
    if isinstance(html, bytes):
        charset = None
        if content_type and (m := re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)):
            charset = m.group(1)
        html = decode(html, charset).text
    raw = _Raw.of(html)
    doc = _clean_tree(raw)
    # metadata from ``doc`` below, once there is text (a tree that did not parse: trafilatura's)
    result = _extract(doc if doc is not None else html, url, with_metadata=doc is None)
    if result is None:
        return None
    text = _tidy(fix_mojibake(result.text or ""))
    if doc is not None and len(containers := _body_containers(doc, raw)) >= 2:
        merged = etree.Element("html")
        head = doc.find("head")
        if head is not None:
            merged.append(copy.deepcopy(head))
        article = etree.SubElement(etree.SubElement(merged, "body"), "article")
        for c in containers:
            article.append(copy.deepcopy(c))
        alt = _extract(lxml.html.tostring(merged, encoding="unicode"), url)
        alt_text = _tidy(fix_mojibake(alt.text or "")) if alt is not None else ""
        base = _words(text)
        if len(alt_text) > 1.2 * len(text) and base and len(base & _words(alt_text)) >= 0.9 * len(base):
            text = alt_text
    if not text:
        return None
    language = detect_language(text, result.language)
    meta = _Metadata.read(doc, url) if doc is not None else _Metadata.of(result)
    published = _page_date(doc, language, timezone)
    if published is None and (date := meta.date()):
        published = _searched_date(date, timezone, language)
    canonical_url = _declared_url(doc, url)
    authors = meta.author()  # last: its search takes elements out of ``doc``
    return Extracted(title=fix_mojibake(meta.title) if meta.title else None, text=text, published=published,
                     authors=authors or None, language=language, canonical_url=canonical_url,
                     image=web_url(urljoin(url or "", meta.image)) if meta.image else None)
