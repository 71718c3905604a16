"""What the parse stage hands on: ``FeedEntry`` and its ``FeedParseError``, without the parsers.

Kept apart from ``monitor.parse.feed`` (feedparser, BeautifulSoup, ftfy, dateparser) so that the
daemon can send its first request before importing them: a poll needs these names before the
response arrives, the parsers only after (see README "Start-up time").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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

    @property
    def content_text(self) -> str:
        from monitor.parse.feed import html_to_text

        return html_to_text(self.content_html)
