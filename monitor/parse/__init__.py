"""Stage: parse. Feed bytes in, typed entries out."""

from monitor.parse.feed import FeedEntry, FeedParseError, ParsedFeed, parse_feed

__all__ = ["FeedEntry", "FeedParseError", "ParsedFeed", "parse_feed"]
