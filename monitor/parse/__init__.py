"""Stage: parse. Feed bytes in, typed entries out; links unwrapped and canonicalised (``urls``).

The names are imported on first use: ``FeedEntry`` and ``FeedParseError`` (``monitor.parse.entry``)
without feedparser, BeautifulSoup and ftfy, which only ``parse_feed`` needs, so a poll can be
sent before they are imported, and ``monitor.parse.dates`` comes without them too.
"""

from typing import TYPE_CHECKING

from monitor.util import lazy_exports

if TYPE_CHECKING:
    from monitor.parse.entry import FeedEntry, FeedParseError
    from monitor.parse.feed import ParsedFeed, parse_feed
    from monitor.parse.urls import canonical_url

__all__ = ["FeedEntry", "FeedParseError", "ParsedFeed", "canonical_url", "parse_feed"]
__getattr__ = lazy_exports(__name__, {**dict.fromkeys(("FeedEntry", "FeedParseError"), "monitor.parse.entry"),
                                      **dict.fromkeys(("ParsedFeed", "parse_feed"), "monitor.parse.feed"),
                                      "canonical_url": "monitor.parse.urls"})
