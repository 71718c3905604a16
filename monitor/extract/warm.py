"""Imported by the extraction pool's forkserver: the extractor and the
language model, loaded once before the workers are forked from it (their pages are then shared,
not copied, and no worker pays for them on its first page)."""

import logging

import trafilatura  # noqa: F401  (imported by the first page otherwise: in every worker)

from monitor import collector, pagework
from monitor.extract import article, pool, speedups  # noqa: F401  (article: lxml, dateparser)
from monitor.extract.language import _identifier
from monitor.extract.pool import release_file_pages, trim_heap, tune_malloc

tune_malloc()  # the workers inherit it

_identifier()
speedups.apply()
# The workers run ``monitor.pagework.work``: the one-off work of their first page done here, once.
# Only a saving: a failure here must not stop the forkserver (it survives only an ImportError
# of what it preloads), or every page after it would fail to extract.
try:
    pagework.warm_up()
except Exception:
    logging.getLogger(__name__).warning("extraction warm-up failed; the workers' first pages do it", exc_info=True)
# The sample page's trim mark is the forkserver's: each worker measures its own growth.
pool.forget_trim()
# Not jusText's stop words of every language (~0.2 s; ~2 MB in a ``WordSet``):
# trafilatura falls back to jusText on about one page in 300 (bench.ingest's pages), so a worker
# gathers them when it first needs them, rather than every start of the pool paying.

# What the workers inherit stays shared only while nothing writes to its pages. The collector
# would (it marks every object it scans): everything loaded so far goes out of its reach, the
# garbage of loading collected first (monitor.collector). And the memory freed while loading
# goes back to the system rather than into every worker's copy of the heap. The libraries' code
# that ran only to load them is unmapped.
collector.freeze(collect_first=True)
trim_heap()
release_file_pages()
