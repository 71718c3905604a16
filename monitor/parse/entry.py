"""What the parse stage hands on: ``FeedEntry`` and its ``FeedParseError``, without the parsers.

Kept apart from ``monitor.parse.feed`` (feedparser, BeautifulSoup, ftfy, dateparser) so that the
daemon can send its first request before importing them: a poll needs these names before the
response arrives, the parsers only after (see README "Start-up time").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

# The longest GUID and link an entry keeps as written, in UTF-8 bytes. Both are unique keys of
# the article table, and PostgreSQL's B-tree index refuses an entry over ~2.7 KB that does not
# compress: a hostile feed's 10 KB GUID or link was "not stored" there (ProgramLimitExceeded)
# and lost, while SQLite stored it. Real ones are far shorter (links: 2,048 characters is the
# sitemap protocol's and most crawlers' limit). A longer one is replaced by a digest of it: the
# same value gives the same digest at every poll, so the entry is still seen once.
MAX_GUID_BYTES = 1000
MAX_URL_BYTES = 2048


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _fits(value: str, limit: int) -> bool:
    return len(value) <= limit // 4 or len(value.encode("utf-8", "surrogatepass")) <= limit


def storable_guid(guid: str) -> str:
    return guid if _fits(guid, MAX_GUID_BYTES) else f"sha256:{_digest(guid)}"


def storable_url(url: str) -> str:
    """``url``, or for one too long to be an index key a URN of its digest: no page is fetched
    for it (the entry keeps the feed's own text, as an entry without a link does), and the link
    itself stays in ``original_url``."""
    return url if _fits(url, MAX_URL_BYTES) else f"urn:monitor:link:{_digest(url)[:32]}"


class FeedParseError(Exception):
    """``is_html``: the response is a web page, where feed autodiscovery may find the feed."""

    def __init__(self, url: str, message: str, is_html: bool = False):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.is_html = is_html


@dataclass(frozen=True)
class FeedEntry:
    guid: str
    url: str  # canonical: redirect wrappers unwrapped, tracking parameters removed
    title: str
    content_html: str  # the richest body the feed carries (content, else summary)
    published: datetime | None  # None: the feed gives no usable date (the caller flags it)
    author: str | None = None
    language: str | None = None
    image: str | None = None
    original_url: str | None = None  # the link as the feed wrote it
    # When the source says the entry last changed, as written (Atom <updated>, JSON Feed's
    # date_modified, a sitemap's lastmod; RSS has none): with the title and the content, what
    # ``digest`` reads to tell that a stored article's entry changed.
    updated: str | None = None

    def __post_init__(self) -> None:
        # Every source type makes its entries here: feeds, sitemaps, listing pages.
        object.__setattr__(self, "guid", storable_guid(self.guid))
        object.__setattr__(self, "url", storable_url(self.url))

    def digest(self) -> str:
        """What the source says of the entry now, in 32 hex digits: its title, its content's words
        (markup left out: a feed that rewrites its tracking pixels or attribute order every poll
        has not changed the entry) and its ``updated``. Stored with the article; a later poll
        that finds another digest re-reads the article (``monitor.pipeline``, README "Updated
        articles")."""
        from monitor.clean import tags_to_spaces

        words = " ".join(tags_to_spaces(self.content_html).split()) if self.content_html else ""
        return _digest("\x1f".join((" ".join(self.title.split()), words, self.updated or "")))[:32]

    @property
    def content_text(self) -> str:
        from monitor.parse.feed import html_to_text

        return html_to_text(self.content_html)
