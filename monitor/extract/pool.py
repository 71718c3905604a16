"""Extraction on every core: a pool of worker processes.

Extraction is most of the CPU an article costs, and lxml (under trafilatura) is not thread-safe:
concurrent extractions in one process crash it (trafilatura issues #840, #925). Processes are
safe and use every core. They are forked from a "forkserver" that has already imported the
extractor and mapped the language model (``warm``), so a worker
starts in milliseconds, the first article pays no loading, and what was loaded is shared by the
workers instead of copied into each. A worker gives back the memory a page grew it by (beyond
the few MB usual pages reuse: ``trim_when_grown``).

They exist only while there are pages to extract: started by the first page (while it
downloads), they and their forkserver exit after ``IDLE_EXIT`` seconds without one, so an idle
daemon holds none of their ~160 MB (after 300 pages; PSS). Starting again costs ~0.6-0.9 s of CPU,
once per burst of new articles.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from monitor.extract.result import Extracted

T = TypeVar("T")

IDLE_EXIT = 60.0  # seconds without a page, after which the workers and their forkserver exit

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_busy = 0  # extractions submitted and not yet finished
_last_used = 0.0  # time.monotonic() when the last one finished (or the pool started)


def workers() -> int:
    """One worker per core (at most 4: beyond that the event loop and the database are the limit)."""
    return max(1, min(4, os.cpu_count() or 1))


def _start_worker() -> None:
    """Each worker's initialiser. Ctrl-C reaches the whole process group: the daemon decides how
    to stop, not its workers. And the workers and their forkserver exit when the daemon dies,
    however it dies (``_die_with_the_daemon``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_the_daemon()


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_the_daemon() -> None:
    """Make this worker and its forkserver exit when the daemon that started them dies, SIGKILL
    and the OOM killer included (no finalizer of the daemon's runs then). Without this they
    outlived it for good: each worker holds the write end of its own task queue (so it waits for
    tasks forever) and of the forkserver's "alive" pipe, whose end of file is the forkserver's one
    signal to exit (multiprocessing hands it to every process the forkserver forks). Under
    systemd the service's cgroup is killed whole; in a container without an init, a shell, or the
    tests, they stayed, with their memory (a test run under load left 134 of them).

    - The worker closes its copy of that pipe: the daemon holds the last one, and the forkserver
      sees end of file the moment the daemon is gone, and exits.
    - The worker asks Linux for SIGKILL when its parent, the forkserver, exits (prctl
      PR_SET_PDEATHSIG; the forkserver forks on its one thread, which is what the kernel
      watches). Should the forkserver have exited before that call, the daemon is already dead
      (while it lives, the forkserver is stopped only after its workers exited: ``shutdown``,
      the idle exit): the worker checks that after the call, and exits.

    Private to multiprocessing (the forkserver's pipe), so skipped where that is gone; the
    signal only on Linux (glibc)."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    alive = getattr(server, "_forkserver_alive_fd", None)
    if server is not None and isinstance(alive, int):
        server._forkserver_alive_fd = None
        os.close(alive)
    libc = _libc()
    if libc is None or not hasattr(libc, "prctl") or libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    daemon = multiprocessing.parent_process()  # the process that started the pool, not the forkserver
    if daemon is not None and not daemon.is_alive():
        os._exit(0)


def extract_pool(busy: bool = False) -> ProcessPoolExecutor:
    """The process pool, started on first use and shared by every pipeline of the process.
    ``busy``: count a page as submitted (atomically with getting the pool, so the idle exit
    cannot shut it down in between)."""
    global _pool, _busy
    with _lock:
        if _pool is None:
            tune_malloc()
            _skip_resource_tracker()
            _pool = ProcessPoolExecutor(workers(), mp_context=_context(), initializer=_start_worker)
            _touch()
            threading.Thread(target=_exit_when_idle, args=(_pool,), name="extract-idle", daemon=True).start()
        _busy += busy
        return _pool


def _skip_resource_tracker() -> None:
    """Start no resource tracker for the pool: multiprocessing's ``resource_tracker`` is a Python
    process of its own (~6 MB of the ingest's peak, bench.ingest) whose one task here is to
    unlink the pool's five named semaphores (its queues' locks, files in /dev/shm) should this
    process die without running its finalizers (SIGKILL, the OOM killer). Every other exit
    unlinks them itself (``multiprocessing.util.Finalize``). After such a kill, the deployments
    clean up anyway: systemd removes a stopped service's IPC objects (deploy/monitor.service:
    ``DynamicUser``, ``RemoveIPC``), a container has its own /dev/shm.

    How: the tracker's pipe is /dev/null, so multiprocessing finds it "running" and starts none;
    what it would have sent the tracker goes nowhere. Private to multiprocessing, so only on
    Python 3.11 (whose code this was checked against) and only before anything started one:
    elsewhere the tracker runs as before."""
    import sys
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if (sys.version_info[:2] != (3, 11) or tracker is None or not hasattr(tracker, "_check_alive")
            or getattr(tracker, "_fd", 0) is not None or getattr(tracker, "_pid", 0) is not None):
        return
    tracker._fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)


def _touch() -> None:
    global _last_used
    _last_used = time.monotonic()


def _exit_when_idle(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` and the forkserver once nothing was extracted for ``IDLE_EXIT`` seconds."""
    global _pool
    while True:
        with _lock:
            if _pool is not pool:
                return  # replaced (a worker died) or shut down
            idle = time.monotonic() - _last_used
            if not _busy and idle >= IDLE_EXIT:
                _pool = None
                # Under the lock: a page arriving meanwhile waits for a new pool until this one
                # and its forkserver are gone (tens of milliseconds: the workers are idle).
                pool.shutdown(wait=True)
                _stop_forkserver()
                return
            wait = IDLE_EXIT if _busy else IDLE_EXIT - idle  # _last_used only moves on
        time.sleep(max(0.05, wait))


def _stop_forkserver() -> None:
    """The forkserver (which holds the extractor and the language model) exits; the next pool
    starts a new one. Python has no public call for this: skipped where the private one is gone."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


# Freed memory a worker may keep for its next pages (see ``trim_when_grown``).
TRIM_SLACK = 8 << 20
_trimmed_at: int | None = None  # the process's anonymous memory right after its last trim


def extract_page(html: bytes | str, url: str | None, content_type: str | None,
                 timezone: str | None) -> Extracted | None:
    """In the worker: ``extract_article``, then the memory the page's trees took goes back to the
    system if it grew the worker (``trim_when_grown``)."""
    from monitor.extract.article import extract_article  # loaded by the forkserver (``warm``)

    try:
        return extract_article(html, url, content_type, timezone=timezone)
    finally:
        forget_page_strings()
        trim_when_grown()


# trafilatura's caches keyed by a page's own strings (its paragraphs and lines), each up to 1,024
# of them: what a page's extraction asks of them again within the page (most of their hits)
# stays cached, what is left after it goes. Kept, they held ~3 MB in each worker after 150 pages
# (bench.ingest), strings of pages long gone, for the rare repeat from a later page.
_PAGE_CACHES = ("trim", "line_processing")


def forget_page_strings() -> None:
    """Empty trafilatura's caches of a page's strings (``_PAGE_CACHES``); skipped for any that a
    trafilatura version no longer has. Worker CPU unchanged (bench.extract_workers)."""
    from trafilatura import utils

    for name in _PAGE_CACHES:
        clear = getattr(getattr(utils, name, None), "cache_clear", None)
        if clear is not None:
            clear()


def trim_when_grown() -> None:
    """``trim_heap`` once the process's anonymous memory is ``TRIM_SLACK`` above what it was
    right after its last trim (and on its first call). glibc keeps what lxml freed for reuse:
    untrimmed, a worker's heap would grow to the largest page it has seen and stay there, in
    every worker. But trimming after every page gave back the ~5 MB a usual page's trees take,
    which the next page then faulted in again (~260 page faults): 0.55 ms of a page's ~5.7 ms
    of CPU (bench.ingest's pages, in one process). So a worker keeps up to ``TRIM_SLACK`` of
    freed memory for the next pages, and a page that grew it beyond is given back. Trims every
    time where /proc is missing."""
    global _trimmed_at
    now = _anonymous_memory()
    if now is not None and _trimmed_at is not None and now <= _trimmed_at + TRIM_SLACK:
        return
    trim_heap()
    _trimmed_at = _anonymous_memory()


def forget_trim() -> None:
    """Start ``trim_when_grown`` afresh: the forkserver's mark (set by its warm-up page) is not a
    worker's, whose first page trims and sets its own."""
    global _trimmed_at
    _trimmed_at = None


def _anonymous_memory() -> int | None:
    """Resident bytes not backed by a file (the heap's and the interpreter's; not the mapped
    language model's, which trimming cannot give back): resident minus shared in
    /proc/self/statm. None where it cannot be read."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
        try:
            fields = os.read(fd, 128).split()
        finally:
            os.close(fd)
        return (int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
_M_ARENA_MAX = -8


@functools.cache
def tune_malloc() -> None:
    """Make the C heap give back what pages cost (glibc; nothing elsewhere). Once per process,
    before its threads allocate much: the daemon's process when it starts the pool, the
    forkserver for the workers (they inherit it).

    - A block of 128 KB or more (a page's bytes, its decoded text, their pickles on the way to
      a worker) is mapped for itself and unmapped when freed. glibc starts so, then raises that
      threshold to the size of each such block freed (up to 32 MB), after which a page's blocks
      come from the heap and what they leave there stays in the process.
    - At most two heaps ("arenas") for all threads: glibc makes up to eight per core, one per
      thread that finds the others busy, and memory freed in one serves only that one. The
      daemon's threads (event loop, ingest, the pool's feeders) mostly take turns on the
      interpreter lock anyway.

    bench.ingest: the daemon's own process ~4 MB smaller at the end of the run, the tree's peak
    ~7 MB lower (env MALLOC_MMAP_THRESHOLD_/MALLOC_ARENA_MAX, same run); CPU unchanged."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_ARENA_MAX, 2)
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


def trim_heap() -> None:
    """Give the memory the C heap keeps for reuse back to the system (glibc's malloc_trim;
    nothing where there is no glibc)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def release_file_pages() -> int:
    """Unmap the pages of the loaded libraries' files that this process has read (the C
    extensions' code its imports ran, say): they stay in the page cache, and whoever reads them
    again (a worker forked from here) maps them back on first use. Called by the forkserver
    before it forks anything: what it ran only to load (numpy's, lxml's, OpenBLAS's start-up
    code: ~7 MB) is otherwise counted in its memory for as long as the pool lives, though no
    worker ever runs it.

    Only mappings nothing has written to (read-only and without one anonymous page, so not a
    library's relocated data): those pages are the file's, and dropping them loses nothing.
    Returns the bytes of the mappings released; 0 where there is no /proc or no glibc."""
    import mmap

    libc = _libc()
    if libc is None or not hasattr(mmap, "MADV_DONTNEED"):
        return 0
    regions: list[tuple[int, int, bool]] = []  # (start, end, unwritten file mapping)
    try:
        with open("/proc/self/smaps") as f:
            for line in f:
                field = line.split()
                if not field[0].endswith(":"):  # a mapping's first line: range perms offset dev inode path
                    start, end = (int(x, 16) for x in field[0].split("-"))
                    is_file = len(field) > 5 and field[4] != "0" and field[5].startswith("/")
                    regions.append((start, end, is_file and "w" not in field[1]))
                elif field[0] == "Anonymous:" and field[1] != "0" and regions:
                    regions[-1] = (*regions[-1][:2], False)
    except OSError:
        return 0
    released = 0
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for start, end, unwritten in regions:
        if unwritten and madvise(start, end - start, mmap.MADV_DONTNEED) == 0:
            released += end - start
    return released


def warm_up() -> None:
    """Start the forkserver and the workers now, not when the first page has arrived. Where they
    cannot start, nothing: ``run`` says so and extracts without them."""
    pool = None
    try:
        pool = extract_pool()
        for f in [pool.submit(os.getpid) for _ in range(workers())]:
            f.result()
    except (OSError, BrokenProcessPool):
        if pool is not None:
            _let_go(pool)


def _let_go(pool: ProcessPoolExecutor, cancel: bool = False) -> None:
    """Hand ``pool`` no more pages (the next page starts a new one) and shut it down without
    waiting: the pages queued in it run on the workers it has, or with ``cancel`` are dropped
    (a broken pool has failed them already). A pool no longer the current one was shut down
    by whoever replaced it; shutting it down again does nothing."""
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=cancel)


_warming = threading.Lock()


def warm_up_soon() -> None:
    """``warm_up`` on a thread: the caller goes on (fetching the page, say) meanwhile. Once:
    a feed's hundred new entries call this together."""
    if _pool is None and not _refused_recently() and _warming.acquire(blocking=False):
        def run() -> None:
            try:
                warm_up()
            finally:
                _warming.release()

        threading.Thread(target=run, name="extract-warm-up", daemon=True).start()


# A page's CPU in a worker: past ``PAGE_CPU_LIMIT`` seconds its extraction is given up (an
# exception raised into it at its next Python instruction: the worker goes on with the next
# page, and the article is stored with its feed's text, as when a page cannot be fetched); past
# ``PAGE_CPU_KILL`` the kernel stops the worker (a page stuck inside C code that never reaches
# a Python instruction). Why these values: the slowest of the 60 real pages of
# ../shared/data/articles takes 0.3 s; trafilatura's pruning is superlinear in the number of
# sibling blocks, so a live blog of 20,000 updates (3 MB) takes 9 s and of 40,000 (6 MB) 26 s;
# ``[fetch] max_bytes`` (10 MB) lets through pages of up to ~60 s. Without a limit a hostile
# page held a worker for as long as it took, and every page behind it waited.
PAGE_CPU_LIMIT = 60.0
PAGE_CPU_KILL = 90.0


class PageTooSlow(Exception):
    """A page's work went past ``PAGE_CPU_LIMIT`` seconds of CPU and was given up."""


class _OverBudget(BaseException):
    """Raised into the page's work by the CPU timer: a BaseException, so the extractor's own
    ``except Exception`` handlers (trafilatura has many) cannot swallow it and go on."""


def _over_budget(signum: int, frame: object) -> None:
    raise _OverBudget


def _within_limits(task: Callable[..., T], args: tuple[Any, ...], limit: float, kill: float) -> T:
    """In the worker: ``task(*args)`` under the page's CPU limits (``PAGE_CPU_LIMIT``,
    ``PAGE_CPU_KILL``: passed along, so the daemon's values are the ones that count). Two
    interval timers of the worker's own CPU: ITIMER_PROF (user and system time) raises
    ``_OverBudget`` through a handler; ITIMER_VIRTUAL (user time) sends SIGVTALRM, whose default
    action ends the process whatever it is running, without a core file."""
    signal.signal(signal.SIGPROF, _over_budget)
    signal.signal(signal.SIGVTALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_VIRTUAL, kill)
    signal.setitimer(signal.ITIMER_PROF, limit)
    try:
        return task(*args)
    except _OverBudget:
        raise PageTooSlow(f"extraction took more than {limit:g} s of CPU and was given up") from None
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)


# Pages whose worker died under them, extracted again one at a time, each in a worker of its
# own (``_alone``): on its own thread, so a queue of them never holds the event loop's default
# executor (which resolves host names).
_ALONE = ThreadPoolExecutor(1, thread_name_prefix="extract-alone")


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["monitor.extract.warm"])
    return ctx


def _alone(call: Callable[[], T]) -> T:
    """``call`` in a worker process of its own (one-off: started from the forkserver, a few
    milliseconds), the only page in it. When a worker dies, every page handed to the pool and
    not yet done fails with it, not only the page that killed it (``concurrent.futures``
    breaks the whole pool): a burst of a hundred new articles would all have been stored with
    their feed's text only. Each is tried again here, alone, so only the page that kills this
    worker too fails."""
    pool = ProcessPoolExecutor(1, mp_context=_context(), initializer=_start_worker)
    try:
        future = pool.submit(call)
        started = list((getattr(pool, "_processes", None) or {}).values())  # private: for the message only
        return future.result()
    except BrokenProcessPool:
        # Its exit status read by the pool's own thread only, which reaps it: a second reader of
        # a forkserver child's status pipe finds it empty and records 255 in its stead.
        pool.shutdown(wait=True)
        codes = [worker.exitcode for worker in started]
        if -signal.SIGVTALRM in codes:
            raise PageTooSlow(f"extraction took more than {PAGE_CPU_KILL:g} s of CPU: "
                              f"its worker was stopped") from None
        raise RuntimeError(f"the extraction worker died on this page{_how(codes)}") from None
    finally:
        pool.shutdown(wait=True)


def _how(codes: list[int | None]) -> str:
    """How a worker ended, for the page's error: " (SIGSEGV)", " (signal 77)", " (exit status 1)"."""
    for code in codes:
        if code is not None and code < 0:
            try:
                return f" ({signal.Signals(-code).name})"
            except ValueError:
                return f" (signal {-code})"
        if code:
            return f" (exit status {code})"
    return ""


# Where the workers cannot start: when the pool was last refused, and the thread pages are
# extracted on meanwhile (one: lxml is not thread-safe).
NO_WORKERS_RETRY = 300.0  # seconds before the workers are tried again
_refused_at: float | None = None
_IN_PROCESS = ThreadPoolExecutor(1, thread_name_prefix="extract-in-process")


def _refused_recently() -> bool:
    refused = _refused_at
    return refused is not None and time.monotonic() - refused < NO_WORKERS_RETRY


def _no_workers(exc: OSError) -> None:
    """Note that the workers could not start, and say so (once per ``NO_WORKERS_RETRY``)."""
    global _refused_at
    with _lock:
        first = _refused_at is None or time.monotonic() - _refused_at >= NO_WORKERS_RETRY
        _refused_at = time.monotonic()
    if first:
        logging.getLogger(__name__).warning(
            "extraction workers cannot start (%s): pages are extracted in this process, one at a time and "
            "without a CPU limit per page; the workers are tried again in %d s", exc, NO_WORKERS_RETRY)


async def run(task: Callable[..., T], *args: Any) -> T:
    """``task(*args)`` in a worker process: a module-level function (it is pickled by name), a
    page's work (``extract_page``, or ``monitor.pagework``'s, which adds later stages' pure work
    to it), within the page's CPU limits (``PAGE_CPU_LIMIT``: ``PageTooSlow``). A worker that
    dies on a page (lxml has crashed on hostile markup, the kernel stopped it at
    ``PAGE_CPU_KILL``) fails that page only: the pool is replaced for the next pages, and the
    pages that were in it meanwhile are tried again, each alone (``_alone``).

    Where the workers cannot start at all (no writable /dev/shm for their queues' semaphores,
    as in some containers; no process left to fork), pages are extracted in this process, on
    one thread of their own, rather than every article stored with its feed's text only."""
    # Here, not at the top: this module is unpickled in every worker (``extract_page``) and
    # imported by their forkserver, neither of which runs an event loop.
    import asyncio

    global _busy
    loop = asyncio.get_running_loop()
    if _refused_recently():
        return await loop.run_in_executor(_IN_PROCESS, functools.partial(task, *args))
    call = functools.partial(_within_limits, task, args, PAGE_CPU_LIMIT, PAGE_CPU_KILL)
    try:
        pool = extract_pool(busy=True)
    except OSError as exc:
        _no_workers(exc)
        return await loop.run_in_executor(_IN_PROCESS, functools.partial(task, *args))
    try:
        try:
            future = pool.submit(call)  # starts the workers (and their forkserver) if need be
        except OSError as exc:
            _let_go(pool)
            _no_workers(exc)
            return await loop.run_in_executor(_IN_PROCESS, functools.partial(task, *args))
        except BrokenProcessPool:
            pass  # broken by a worker's death under another page: this page goes alone
        else:
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                pass
        _let_go(pool, cancel=True)
        return await loop.run_in_executor(_ALONE, _alone, call)
    finally:
        with _lock:
            _busy -= 1
            _touch()


async def extract(html: bytes | str, url: str | None = None, content_type: str | None = None,
                  timezone: str | None = None) -> Extracted | None:
    """``extract_article`` in a worker process (``run``)."""
    return await run(extract_page, html, url, content_type, timezone)


def shutdown() -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
        _stop_forkserver()
