"""Stage: source. Turns one configured source (feed, HTML listing page or sitemap) into entries.

Every kind yields the same ``FeedEntry`` list, so everything after this stage (page fetch,
extraction, dedup, matching) is the same whatever the source was.

Here: the source types and the checks of their keys (registered with the config at import).
The poll itself is ``monitor.sources.poll`` (``fetch_source``), imported on first use of its
names, so ``check-config`` does not import the fetch and parse stages (httpx, feedparser, lxml).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monitor import config
from monitor.util import lazy_exports, parse_duration

if TYPE_CHECKING:
    from monitor.sources.poll import (
        FEED_ACCEPT,
        HTML_ACCEPT,
        SourceFetch,
        fetch_source,
        robots_enabled,
    )

__all__ = ["FEED_ACCEPT", "HTML_ACCEPT", "SourceFetch", "fetch_source", "robots_enabled"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "monitor.sources.poll"))


def _links_problems(opts: Mapping[str, Any]) -> list[str]:
    links = opts.get("links")
    if links is None:
        return []
    if not isinstance(links, str) or not links.strip():
        return ["links must be a CSS selector string"]
    import soupsieve

    try:
        soupsieve.compile(links)
    except Exception as exc:
        return [f"links is not a valid CSS selector: {exc}"]
    return []


def _window_problems(opts: Mapping[str, Any]) -> list[str]:
    if "window" not in opts:
        return []
    try:
        parse_duration(opts["window"])
    except ValueError as exc:
        return [f"window: {exc}"]
    return []


config.register_source_type("feed")
config.register_source_type("html", keys={"links"}, check=_links_problems)
config.register_source_type("sitemap", keys={"window"}, check=_window_problems)
