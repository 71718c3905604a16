"""Stage: story. Canonical URLs and content hashes decide whether an article is new."""

from monitor.story.content import content_hash
from monitor.story.urls import canonical_url

__all__ = ["canonical_url", "content_hash"]
