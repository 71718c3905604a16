"""Extraction on every core: a pool of worker processes.

Extraction is most of the CPU an article costs, and lxml (under trafilatura) is not thread-safe:
concurrent extractions in one process crash it (trafilatura issues #840, #925). Processes are
safe and use every core. They are forked from a "forkserver" that has already imported the
extractor and loaded the language model, so a worker starts in milliseconds, the first article
pays no loading, and the model's arrays are shared by the workers instead of copied into each.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from monitor.extract.article import Extracted, extract_article

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def workers() -> int:
    """One worker per core (at most 4: beyond that the event loop and the database are the limit)."""
    return max(1, min(4, os.cpu_count() or 1))


def _quiet() -> None:
    # Ctrl-C reaches the whole process group: the daemon decides how to stop, not its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def extract_pool() -> ProcessPoolExecutor:
    """The process pool, started on first use and shared by every pipeline of the process."""
    global _pool
    with _lock:
        if _pool is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["monitor.extract.warm"])
            _pool = ProcessPoolExecutor(workers(), mp_context=ctx, initializer=_quiet)
        return _pool


def warm_up() -> None:
    """Start the forkserver and the workers now (at daemon start), not on the first article."""
    pool = extract_pool()
    for f in [pool.submit(os.getpid) for _ in range(workers())]:
        f.result()


def warm_up_soon() -> None:
    """``warm_up`` on a thread: the caller goes on (fetching the page, say) meanwhile."""
    if _pool is None:
        threading.Thread(target=warm_up, name="extract-warm-up", daemon=True).start()


async def extract(html: bytes | str, url: str | None = None, content_type: str | None = None,
                  timezone: str | None = None) -> Extracted | None:
    """``extract_article`` in a worker process. A worker that dies on a page (lxml has crashed
    on hostile markup) fails that page only: the pool is replaced for the next one."""
    pool = extract_pool()
    try:
        return await asyncio.get_running_loop().run_in_executor(
            pool, functools.partial(extract_article, html, url, content_type, timezone=timezone))
    except BrokenProcessPool:
        global _pool
        with _lock:
            if _pool is pool:
                _pool = None
        pool.shutdown(wait=False, cancel_futures=True)
        raise RuntimeError("the extraction worker died on this page") from None


def shutdown() -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
