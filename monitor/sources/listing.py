"""HTML sources: article links found on a section page, and feeds named by a homepage.

Parsed with BeautifulSoup's pure-Python ``html.parser``, never lxml: these run outside the
single extraction thread, and lxml must not be used from two threads at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup, Tag

FEED_TYPES = {
    "application/rss+xml": 0, "application/atom+xml": 0, "application/feed+json": 1,
    "application/rdf+xml": 2, "application/json": 3, "application/xml": 4, "text/xml": 4,
}
_CHROME = {"nav", "header", "footer", "aside", "menu", "form"}
_CHROME_HINT = re.compile(r"(^|[\s_-])(nav|menu|footer|header|breadcrumb|sidebar|social|share|"
                          r"pagination|pager|cookie|newsletter|subscribe|login|topbar|masthead)([\s_-]|$)", re.I)
_NOT_ARTICLE_PATH = re.compile(
    r"/(tag|tags|topic|topics|category|categories|author|authors|page|search|login|logout|register|"
    r"signin|signup|subscribe|account|about|contact|privacy|terms|imprint|impressum|cookies|feed|rss|"
    r"newsletter|advertise|careers|jobs|help|faq|sitemap|archive|archives|video|videos|gallery|photos|"
    r"podcast|podcasts|live|weather|horoscope)(/|$)", re.I)
_FILE_EXT = re.compile(r"\.(jpe?g|png|gif|webp|svg|pdf|zip|mp3|mp4|css|js|xml|rss|json|ico|txt)$", re.I)
_DATE_IN_PATH = re.compile(r"/(19|20)\d{2}([/-])(0?[1-9]|1[0-2])(\2|/)|/(19|20)\d{6}\b|[-_/]\d{5,}(\.html?)?$")


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def _in_chrome(a: Tag) -> bool:
    for parent in a.parents:
        if not isinstance(parent, Tag):
            continue
        if parent.name in _CHROME:
            return True
        if parent.name == "article" or parent.name == "main":
            return False
        ident = " ".join([*(parent.get("class") or []), str(parent.get("id") or ""), str(parent.get("role") or "")])
        if ident.strip() and _CHROME_HINT.search(ident):
            return True
    return False


def _looks_like_article(url: str, text: str, a: Tag) -> bool:
    path = urlsplit(url).path
    if path in ("", "/") or _FILE_EXT.search(path) or _NOT_ARTICLE_PATH.search(path):
        return False
    segments = [s for s in path.split("/") if s]
    last = segments[-1] if segments else ""
    score = 0
    if _DATE_IN_PATH.search(path):
        score += 2
    if len(re.findall(r"[-_]", last)) >= 3 or len(last) >= 25:
        score += 2  # a slug: words-joined-by-dashes
    if len(segments) >= 2:
        score += 1
    words = len(text.split())
    if words >= 4:
        score += 1
    if words <= 1:
        score -= 1
    if any(isinstance(p, Tag) and (p.name in ("article", "h1", "h2", "h3", "h4")) for p in a.parents):
        score += 1
    return score >= 3


@dataclass(frozen=True)
class Link:
    url: str
    title: str


def article_links(html: bytes | str, page_url: str, selector: str | None = None) -> list[Link]:
    """Links to articles on a listing page, in page order, each once.

    With ``selector`` (the source's ``links``), exactly the links it selects (an element that
    is not an ``<a>`` contributes the links inside it). Without it, same-site links that look
    like articles: not in navigation, header, footer or sidebars, with a slug or a date in the
    path, or a headline as their text.
    """
    soup = BeautifulSoup(html, "html.parser")
    base_tag = soup.find("base", href=True)
    base = urljoin(page_url, str(base_tag["href"])) if isinstance(base_tag, Tag) else page_url
    anchors: list[Tag] = []
    if selector:
        for el in soup.select(selector):
            anchors.extend([el] if el.name == "a" else el.find_all("a", href=True))
    else:
        anchors = soup.find_all("a", href=True)
    site = _host(page_url)
    found: dict[str, Link] = {}
    for a in anchors:
        href = str(a.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
            continue
        url = urldefrag(urljoin(base, href))[0]
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        text = " ".join(a.get_text(" ").split()) or str(a.get("title") or "")
        if not selector:
            if _host(url) != site or url.rstrip("/") == page_url.rstrip("/"):
                continue
            if _in_chrome(a) or not _looks_like_article(url, text, a):
                continue
        prev = found.get(url)
        if prev is None or len(text) > len(prev.title):
            found[url] = Link(url, text)
    return list(found.values())


def feed_links(html: bytes | str, page_url: str) -> list[str]:
    """Feeds a page announces with ``<link rel="alternate" type="...">``, best first.

    RSS and Atom before JSON Feed; comment feeds last.
    """
    soup = BeautifulSoup(html, "html.parser")
    found: list[tuple[int, int, str]] = []
    for i, link in enumerate(soup.find_all("link", href=True)):
        rel: object = link.get("rel") or []
        rels = {str(r).lower() for r in (rel if isinstance(rel, list) else str(rel).split())}
        ftype = str(link.get("type") or "").split(";")[0].strip().lower()
        if "alternate" not in rels or ftype not in FEED_TYPES:
            continue
        url = urljoin(page_url, str(link["href"]).strip())
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        title = str(link.get("title") or "").lower()
        rank = FEED_TYPES[ftype] + (10 if "comment" in title or "comment" in url.lower() else 0)
        if url not in [u for _, _, u in found]:
            found.append((rank, i, url))
    return [u for _, _, u in sorted(found)]

