"""Imported by the extraction pool's forkserver: the extractor and the language model, loaded once
before the workers are forked from it (their pages are then shared, not copied)."""

from monitor.extract import article  # noqa: F401  (trafilatura, lxml, dateparser)
from monitor.extract.language import _identifier

_identifier()
