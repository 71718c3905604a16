"""Stage: dedup. Canonical URLs and content hashes decide whether an article is new."""

from monitor.dedup.content import content_hash
from monitor.dedup.urls import canonical_url

__all__ = ["canonical_url", "content_hash"]
