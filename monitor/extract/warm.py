"""Imported by the extraction pool's forkserver: the extractor, its fallbacks' word lists and the
language model, loaded once before the workers are forked from it (their pages are then shared,
not copied, and no worker pays for them on its first page)."""

import contextlib
import ctypes
import gc

import justext.core
import trafilatura.external

from monitor.extract import article  # noqa: F401  (lxml, dateparser)
from monitor.extract.language import _identifier

_identifier()
# jusText's stop words of every language (~0.5 s): built by the first page that falls back to
# jusText, i.e. once in every worker otherwise.
trafilatura.external.jt_stoplist_init()
# ... and the set that jusText makes of them, once per list (~15 MB, 150,000 lower-cased words).
justext.core.define_stoplist(trafilatura.external.JT_STOPLIST)

# What the workers inherit stays shared only while nothing writes to its pages. The collector
# would (it marks every object it scans): ``freeze`` moves everything loaded so far out of its
# reach. And the memory freed while loading goes back to the system rather than into every
# worker's copy of the heap.
gc.collect()
gc.freeze()
with contextlib.suppress(OSError, AttributeError):
    ctypes.CDLL("libc.so.6").malloc_trim(0)
