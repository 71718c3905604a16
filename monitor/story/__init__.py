"""Stage: story. Content hashes and near-duplicate bands put every article into a story."""

from monitor.story.content import content_hash

__all__ = ["content_hash"]
