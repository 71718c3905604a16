"""Imported by the extraction pool's forkserver: the extractor, its fallbacks' word lists and the
language model, loaded once before the workers are forked from it (their pages are then shared,
not copied, and no worker pays for them on its first page)."""

import trafilatura.external

from monitor.extract import article  # noqa: F401  (lxml, dateparser)
from monitor.extract.language import _identifier

_identifier()
# jusText's stop words of every language (~0.5 s): built by the first page that falls back to
# jusText, i.e. once in every worker otherwise.
trafilatura.external.jt_stoplist_init()
