"""Parse RSS 0.9x/1.0/2.0, Atom and JSON Feed, always from response bytes.

feedparser is never handed a URL or a path: it would fetch or open it itself, bypassing our
fetcher's limits and politeness. We decode the bytes ourselves first (``encoding.decode``:
declarations are often missing or wrong) and hand feedparser UTF-8 that says so; dates are
parsed from the raw strings (``dates.parse_date``: other languages, missing zones); links are
unwrapped from redirectors and canonicalised (``monitor.parse.urls``).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
import feedparser.urls

from monitor.clean import clean_text, tags_to_spaces, web_url
from monitor.parse.budget import DEPTH_CHECK_FROM, MAX_DEPTH, nesting_depth
from monitor.parse.dates import parse_date, plausible, read_date, short_enough_for_a_date
from monitor.parse.encoding import decode, fix_mojibake
from monitor.parse.entry import FeedEntry, FeedParseError
from monitor.parse.feedparser_guard import install as _bound_feedparser
from monitor.parse.urls import canonical_url

_bound_feedparser()  # its author search is quadratic on hostile values (monitor.parse.feedparser_guard)


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    link: str | None
    entries: list[FeedEntry]
    ttl_minutes: int | None = None
    language: str | None = None
    warnings: list[str] = field(default_factory=list)
    encoding: str | None = None


def html_to_text(html: str) -> str:
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return html.strip()
    if len(html) >= DEPTH_CHECK_FROM and nesting_depth(html) >= MAX_DEPTH:
        # Past the depth budget BeautifulSoup takes minutes (seen: 48 s on the ingest thread);
        # dropping the tags keeps the words, which is what matching needs.
        return " ".join(tags_to_spaces(html).split())
    # Imported with the first entry that carries markup (~0.1 s of CPU, most of it soupsieve's
    # selector grammar, which bs4 imports with it): feeds of plain-text summaries never need it.
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    blocks = []
    for el in soup.find_all(["p", "li", "h1", "h2", "h3", "h4", "blockquote"]):
        el.insert_after("\n\n")
    text = soup.get_text()
    for para in text.split("\n\n"):
        p = " ".join(para.split())
        if p:
            blocks.append(p)
    return "\n\n".join(blocks)


def _one_line(html: str) -> str:
    return " ".join(fix_mojibake(html_to_text(html)).split())


_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_RELATIVE_REF = re.compile(r"""(?:href|src|srcset|poster)\s*=\s*["']?(?![a-z][a-z0-9+.-]*:|//)""", re.I)
_CHARREF = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")


def _safe_charref(m: re.Match[str]) -> str:
    digits = m.group(1) or m.group(2)
    code = int(digits, 16 if m.group(1) else 10) if len(digits) <= 8 else -1
    if code == 0 or 0xD800 <= code <= 0xDFFF or not 0 <= code <= 0x10FFFF:
        return "&#xFFFD;"  # feedparser would chr() it and fail on encoding the whole feed
    return m.group(0)


_LOOKS_HTML = re.compile(r"^\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html)", re.I | re.S)


def parse_feed(content: bytes, url: str, content_type: str | None = None, *,
               timezone: str | None = None, language: str | None = None) -> ParsedFeed:
    """Parse feed bytes; recover what can be recovered, raise FeedParseError when nothing is usable.

    ``timezone`` and ``language`` come from the source's config; they decide how dates without
    a zone are read and help choose the encoding of undeclared legacy bytes.
    """
    if not content.strip():
        raise FeedParseError(url, "empty response")
    head = content.lstrip()[:1]
    if head in (b"{", b"[") or (content_type or "").split(";")[0].strip().endswith("json"):
        return _parse_json_feed(content, url, timezone=timezone, language=language)
    charset = None
    if content_type and (m := re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)):
        charset = m.group(1)
    decoded = decode(content, charset, language)
    text = decoded.text.lstrip("\ufeff").lstrip()
    if _LOOKS_HTML.match(text):
        raise FeedParseError(url, "not a feed: the response is an HTML page", is_html=True)
    # Our decoding is authoritative: say UTF-8 in the declaration and the header we pass.
    text = _XML_DECL.sub('<?xml version="1.0" encoding="utf-8"?>', text, count=1)
    text = clean_text(_CHARREF.sub(_safe_charref, text))
    d = feedparser.parse(text.encode("utf-8"), sanitize_html=False, resolve_relative_uris=False,
                         response_headers={"content-type": "application/xml; charset=utf-8"})
    warnings: list[str] = []
    if decoded.note:
        warnings.append(f"encoding: {decoded.note}")
    if d.get("bozo"):
        warnings.append(f"malformed feed, recovered: {d.get('bozo_exception')}")
    if not d.entries and not d.feed.get("title") and not d.get("version"):
        raise FeedParseError(url, f"not a feed: {d.get('bozo_exception') or 'no feed elements found'}")
    feed_lang = language or d.feed.get("language") or None
    # Relative item links mean the publisher's site (Miniflux reads them so too): the channel's
    # absolute <link>, else the feed's own URL. xml:base, where set, feedparser has applied.
    site = urljoin(url, d.feed.get("link") or "")
    base = site if re.match(r"^https?://", site) else url
    entries: list[FeedEntry] = []
    for i, e in enumerate(d.entries):
        try:
            entry = _entry(e, i, base, feed_lang, timezone, warnings)
        except Exception as exc:  # one bad entry never drops the rest of the feed
            warnings.append(f"entry {i}: skipped: {exc}")
            continue
        entries.append(entry)
    ttl = d.feed.get("ttl")
    try:
        ttl_minutes = int(ttl) if ttl else None
    except (TypeError, ValueError):
        ttl_minutes = None
    return ParsedFeed(title=_one_line(d.feed.get("title", "")), link=d.feed.get("link"), entries=entries,
                      ttl_minutes=ttl_minutes, language=d.feed.get("language"), warnings=warnings,
                      encoding=decoded.encoding)


def _entry(e: Any, i: int, base: str, lang: str | None, timezone: str | None,
           warnings: list[str]) -> FeedEntry:
    link = e.get("feedburner_origlink") or e.get("link") or ""
    if not link:
        alternates = [lk.get("href") for lk in e.get("links", []) if lk.get("rel", "alternate") == "alternate"]
        link = next((h for h in alternates if h), "")
    guid = e.get("id") or ""
    if not link and guid and e.get("guidislink", True) and re.match(r"^https?://", guid):
        link = guid
    original = _web_link(base, link)
    title = _one_line(e.get("title", ""))
    if not guid:
        guid = original or title or f"{base}#{i}"
    if not original and not title and not (e.get("summary") or e.get("content")):
        raise ValueError("empty item (no link, title or content)")
    details = [c for c in e.get("content") or [] if c.get("value")]
    if e.get("summary") and e.get("summary_detail"):
        details.append(e["summary_detail"])
    body = ""
    if details:
        richest = max(details, key=lambda c: len(c.get("value", "")))
        body = fix_mojibake(richest["value"])
        # Relative links in the body: against xml:base when the feed sets one, else against
        # the entry's own page (an RSS item's "/article/1" means the item's site, not the feed's).
        content_base = richest.get("base") or original or base
        if "html" in str(richest.get("type", "html")) and _RELATIVE_REF.search(body):
            body = feedparser.urls.resolve_relative_uris(body, content_base, "utf-8", "text/html")
    published = _entry_date(e, i, timezone, lang, warnings)
    author = _one_line(e.get("author") or "") or None
    # No link: a stable URN of its own (so entries do not collide on the site's home page); the
    # pipeline uses the feed's content for it and fetches no page.
    url = canonical_url(original) if original else entry_urn(base, str(guid))
    # Only an <updated> of the entry's own: feedparser's e["updated"] falls back to the published
    # date (with a deprecation warning), which says nothing of a change.
    updated = dict.get(e, "updated")
    return _cleaned(FeedEntry(guid=str(guid), url=url,
                              title=title, content_html=body, published=published, author=author,
                              language=e.get("language") or lang, image=_image(e, original or base),
                              original_url=original or None,
                              updated=" ".join(updated.split())[:100] or None if isinstance(updated, str) else None))


def _web_link(base: str, link: str) -> str:
    """The absolute http(s) link, or "" for anything else (javascript:, data:, file:, ...)."""
    return web_url(urljoin(base, link.strip())) or "" if link and link.strip() else ""


def _cleaned(entry: FeedEntry) -> FeedEntry:
    """Every text field storable (JSON feeds carry lone surrogates and NUL as escapes)."""
    return FeedEntry(guid=clean_text(entry.guid), url=clean_text(entry.url), title=clean_text(entry.title),
                     content_html=clean_text(entry.content_html), published=entry.published,
                     author=clean_text(entry.author) if entry.author else None,
                     language=clean_text(entry.language) if entry.language else None,
                     image=entry.image, original_url=entry.original_url,
                     updated=clean_text(entry.updated) if entry.updated else None)


def entry_urn(feed: str, guid: str) -> str:
    """The identity of an entry that has no link of its own."""
    return "urn:monitor:entry:" + hashlib.sha256(f"{feed}\n{guid}".encode()).hexdigest()[:32]


def _entry_date(e: Any, i: int, timezone: str | None, lang: str | None, warnings: list[str]) -> datetime | None:
    """The entry's date: published, else created, else updated, the first that is readable and
    plausible. A date no article can have (year 9999 or 0001, more than a day ahead: see
    ``dates.plausible``) is not taken as real: without another date the entry is stored undated
    (the time first seen, flagged as estimated) with a warning, never dropped."""
    tried: set[str] = set()
    for key in ("published", "created", "updated"):
        raw = e.get(key)
        if not raw or raw in tried:
            continue
        tried.add(raw)
        dt = read_date(raw, timezone, lang)
        # a format only feedparser knows; not for a value too long to be a date, in which
        # feedparser still finds one (the first digits of "2024-1111...": 2024-11-11)
        if dt is None and e.get(f"{key}_parsed") and short_enough_for_a_date(raw):
            try:
                dt = datetime.fromtimestamp(calendar.timegm(e[f"{key}_parsed"]), UTC)
            except (OverflowError, ValueError, OSError):
                dt = None
        shown = raw if len(raw) <= 100 else raw[:100] + "…"  # a warning is a line, not the feed's 20 KB
        if dt is None:
            warnings.append(f"entry {i}: unreadable date {shown!r}")
        elif not plausible(dt):
            warnings.append(f"entry {i}: implausible date {shown!r} (read as {dt.date().isoformat()}): not taken as real")
        else:
            return dt
    return None

def _image(e: Any, base: str) -> str | None:
    """The entry's first http(s) image."""
    found: list[str] = []
    for key in ("media_thumbnail", "media_content"):
        for m in e.get(key) or []:
            if m.get("url") and (key == "media_thumbnail" or m.get("medium", "image") == "image"
                                 or str(m.get("type", "")).startswith("image/")):
                found.append(m["url"])
    for enc in e.get("enclosures") or []:
        if str(enc.get("type", "")).startswith("image/") and enc.get("href"):
            found.append(enc["href"])
    image = e.get("image")
    if isinstance(image, dict) and image.get("href"):
        found.append(image["href"])
    return next((u for u in (_web_link(base, str(f)) for f in found) if u), None)


def _json_int(digits: str) -> int | str:
    """A JSON number without a fraction: an int, or its digits as written when Python would
    refuse to convert them (over 4,300 digits, ``sys.get_int_max_str_digits``). One item's
    absurd ``id`` made ``json.loads`` raise, and the whole feed was refused as invalid JSON."""
    return int(digits) if len(digits) <= 4000 else digits


def _parse_json_feed(content: bytes, url: str, *, timezone: str | None, language: str | None) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (jsonfeed.org); feedparser 6.0 does not read it."""
    try:
        doc = json.loads(decode(content).text, parse_int=_json_int)
    except ValueError as exc:
        raise FeedParseError(url, f"not a feed: invalid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise FeedParseError(url, "not a feed: JSON without an 'items' list")
    lang = language or doc.get("language")
    warnings: list[str] = []
    entries: list[FeedEntry] = []
    for i, item in enumerate(doc["items"]):
        try:
            if not isinstance(item, dict):
                raise ValueError("item is not an object")
            link = item.get("url") or item.get("external_url") or ""
            original = _web_link(url, str(link))
            raw_date = item.get("date_published") or item.get("date_modified")
            published = parse_date(str(raw_date), timezone, lang) if raw_date else None
            authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
            author = ", ".join(str(a.get("name")) for a in authors if isinstance(a, dict) and a.get("name")) or None
            body = item.get("content_html") or item.get("content_text") or item.get("summary") or ""
            image = item.get("image") or item.get("banner_image")
            entries.append(_cleaned(FeedEntry(
                guid=str(item.get("id") or original or f"{url}#{i}"),
                url=canonical_url(original) if original else entry_urn(url, str(item.get("id") or i)),
                title=_one_line(str(item.get("title") or "")), content_html=str(body),
                published=published, author=author, language=item.get("language") or lang,
                image=_web_link(url, str(image)) or None if image else None, original_url=original or None,
                updated=str(item["date_modified"])[:100] if item.get("date_modified") else None)))
        except Exception as exc:  # one bad item never drops the rest
            warnings.append(f"entry {i}: skipped: {exc}")
    return ParsedFeed(title=str(doc.get("title") or ""), link=doc.get("home_page_url"), entries=entries,
                      language=doc.get("language"), warnings=warnings, encoding="utf-8")
