"""Stage: parse. Feed bytes in, typed entries out; links unwrapped and canonicalised (``urls``)."""

from monitor.parse.feed import FeedEntry, FeedParseError, ParsedFeed, parse_feed
from monitor.parse.urls import canonical_url

__all__ = ["FeedEntry", "FeedParseError", "ParsedFeed", "canonical_url", "parse_feed"]
