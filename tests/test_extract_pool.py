"""The extraction worker processes: a page is extracted in them exactly as in-process, and they
(with their forkserver, which holds the extractor and the language model) exist only while
there are pages: an idle daemon does not keep their memory."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.extract import extract_article
from monitor.extract import pool as extract_pool
from tests.fetch_helpers import articles
from tests.harness import source, start_daemon, write_config
from tests.newsroom import rss, unrelated_pages
from tests.servers import Page, Request, Site

ARTICLES = Path(__file__).resolve().parent / "fixtures" / "articles"


def _page() -> tuple[bytes, str]:
    truth = json.loads((ARTICLES / "ground-truth.json").read_text(encoding="utf-8"))
    pid, gt = sorted(truth.items())[0]
    return (ARTICLES / f"{pid}.html").read_bytes(), gt["url"]


def _descendants(root: int | None = None) -> list[int]:
    """Every process below ``root`` (default: this one; the forkserver is a child, the workers
    its children)."""
    out, todo = [], [root or os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids = [int(c) for c in f.read().split()]
                out += kids
                todo += kids
        except OSError:
            pass
    return out


def _extraction_processes(root: int | None = None) -> list[int]:
    found = []
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"forkserver" in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


@pytest.fixture
def quick_idle_exit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    extract_pool.shutdown()  # a pool of another test of this process would keep its own timer
    monkeypatch.setattr(extract_pool, "IDLE_EXIT", 1.0)
    yield
    extract_pool.shutdown()


def _script_lines(script: str, timeout: float) -> list[str]:
    """What ``python -c script`` (which must succeed) prints, line by line."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=timeout)
    return done.stdout.strip().splitlines()


def _wait_until(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return True
        time.sleep(0.1)
    return False


def test_workers_extract_as_in_process_and_exit_when_idle(quick_idle_exit: None) -> None:
    html, url = _page()
    expected = extract_article(html, url, "text/html; charset=utf-8")
    assert expected is not None

    got = asyncio.run(extract_pool.extract(html, url, "text/html; charset=utf-8"))
    assert got == expected
    running = _extraction_processes()
    assert len(running) >= 2  # the forkserver and its workers (started as pages come)

    # Idle for IDLE_EXIT: all of them exit (generous timeout: a loaded CI machine)
    assert _wait_until(lambda: not _extraction_processes(), timeout=30), _extraction_processes()

    # and the next page starts them again
    again = asyncio.run(extract_pool.extract(html, url, "text/html; charset=utf-8"))
    assert again == expected
    assert set(_extraction_processes()).isdisjoint(running)


def test_a_long_burst_keeps_the_same_workers(quick_idle_exit: None) -> None:
    """Idle means no page for IDLE_EXIT, not IDLE_EXIT since the pool started."""
    html, url = _page()

    async def burst() -> tuple[list[int], int]:
        assert await extract_pool.extract(html, url, "text/html; charset=utf-8") is not None
        first = _extraction_processes()
        n = 1
        end = time.monotonic() + 3 * extract_pool.IDLE_EXIT
        while time.monotonic() < end:
            assert await extract_pool.extract(html, url, "text/html; charset=utf-8") is not None
            n += 1
        return first, n

    first, n = asyncio.run(burst())
    assert n > 1
    assert set(first) <= set(_extraction_processes())  # none exited (more may have started)


def test_the_process_handing_out_pages_never_loads_the_extractor() -> None:
    """The daemon's own process stores what the workers extract: it holds no copy of the
    extractor (lxml's HTML tools, trafilatura's helpers, the language model) for that."""
    import subprocess
    import sys

    html, url = _page()
    script = (
        "import asyncio, json, sys\n"
        "from monitor.extract import pool\n"
        "got = asyncio.run(pool.extract(sys.stdin.buffer.read(), sys.argv[1], 'text/html; charset=utf-8'))\n"
        "pool.shutdown()\n"
        "print(json.dumps([type(got).__name__, sorted(m for m in ('monitor.extract.article', 'lxml.html', "
        "'trafilatura', 'py3langid') if m in sys.modules)]))\n")
    out = subprocess.run([sys.executable, "-c", script, url], input=html, capture_output=True, check=True, timeout=120)
    assert json.loads(out.stdout.decode().strip().splitlines()[-1]) == ["Extracted", []]


def test_the_pool_starts_no_resource_tracker_and_leaves_no_semaphore() -> None:
    """The pool's processes are the forkserver and its workers: no resource tracker process
    (~6 MB) beside them. The pool's named semaphores (its queues' locks, in /dev/shm) are still
    removed when the process exits, as the tracker would have."""

    script = (
        "import json, os\n"
        "from monitor.extract import pool\n"
        "p = pool.extract_pool()\n"
        "pool.warm_up()\n"
        "kids, todo = [], [os.getpid()]\n"
        "while todo:\n"
        "    pid = todo.pop()\n"
        "    kids.append(pid)\n"
        "    for task in os.listdir(f'/proc/{pid}/task'):\n"
        "        todo += [int(c) for c in open(f'/proc/{pid}/task/{task}/children').read().split()]\n"
        "cmds = [open(f'/proc/{k}/cmdline').read().replace(chr(0), ' ') for k in kids[1:]]\n"
        "locks = [p._call_queue._rlock, p._call_queue._wlock, p._call_queue._sem, p._result_queue._rlock]\n"
        "names = [lock._semlock.name for lock in locks if lock is not None]\n"
        "print(json.dumps([cmds, names, [os.path.exists('/dev/shm/sem.' + n.lstrip('/')) for n in names]]))\n"
        "pool.shutdown()\n")
    cmds, names, existed = json.loads(_script_lines(script, timeout=120)[-1])
    assert len(cmds) == 1 + extract_pool.workers() and all("forkserver" in c for c in cmds), cmds
    assert not any("resource_tracker" in c for c in cmds)
    assert names and all(existed)  # named semaphores while the pool ran (the test tests something)...
    assert not any(os.path.exists("/dev/shm/sem." + n.lstrip("/")) for n in names)  # ...removed at exit


def test_a_large_page_freed_is_given_back_to_the_system() -> None:
    """A page's bytes and text (hundreds of KB each) are handed back to the system once freed,
    every time: glibc would otherwise serve the second and later from its heap and keep them
    (``tune_malloc``, in the daemon's process and in the workers)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from monitor.extract import pool\n"
        "if pool._libc() is None: print('skip'); sys.exit()\n"
        "if sys.argv[1] == 'tuned': pool.tune_malloc()\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "page = b'x' * (8 << 20); del page\n"  # the first is mapped for itself either way
        "before = rss()\n"
        "page = b'x' * (8 << 20); del page\n"
        "print(rss() - before)\n")

    def kept(mode: str) -> int | None:
        out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True,
                             timeout=60).stdout.split()
        return None if out == ["skip"] else int(out[-1])

    tuned = kept("tuned")
    if tuned is None:
        pytest.skip("no glibc")
    assert tuned < 2 << 20
    assert (kept("default") or 0) > 6 << 20  # what it would keep otherwise (the test tests something)


def test_a_worker_gives_back_what_a_large_page_grew_it_by() -> None:
    """After each page, a worker whose memory a page grew by more than ``TRIM_SLACK`` gives it
    back to the system; a usual page's memory is kept for the next page (giving it back after
    every page cost ~10 % of a page's CPU, in page faults taking it again)."""

    script = (
        "import json\n"
        "from lxml import html as h\n"
        "from monitor.extract import pool\n"
        "if pool._libc() is None or pool._anonymous_memory() is None: print('skip'); raise SystemExit\n"
        "pool.tune_malloc()\n"
        "trims = []\n"
        "real = pool.trim_heap\n"
        "pool.trim_heap = lambda: (trims.append(1), real())[1]\n"
        "pool.trim_when_grown()\n"  # a worker's first page: trimmed, the level noted
        "keep = []\n"
        "def page(n):\n"
        "    doc = h.fromstring('<div>' + '<p class=\"x\">word</p>' * n + '</div>')\n"
        "    keep.append(h.fromstring('<p>pin</p>'))\n"  # made after the page: its memory is not the heap's top
        "    del doc\n"
        "page(5_000)\n"
        "pool.trim_when_grown()\n"
        "usual = len(trims)\n"
        "before = pool._anonymous_memory()\n"
        "page(200_000)\n"
        "grown = pool._anonymous_memory()\n"
        "pool.trim_when_grown()\n"
        "print(json.dumps([usual, len(trims), grown - before, pool._anonymous_memory() - before]))\n")
    out = _script_lines(script, timeout=60)
    if out == ["skip"]:
        pytest.skip("no glibc or /proc")
    usual, trims, grown, kept = json.loads(out[-1])
    assert usual == 1  # the first page only: the usual page's few MB stay for the next
    assert grown > 4 * extract_pool.TRIM_SLACK  # the large page's freed trees were still held...
    assert trims == 2 and kept < extract_pool.TRIM_SLACK  # ...until given back after it


def test_a_worker_keeps_no_strings_of_a_page_after_it() -> None:
    """trafilatura caches a page's paragraphs and lines (``trim``, ``line_processing``: 1,024 of
    each) for the rest of the process: a worker gives them up after each page (~3 MB a worker
    after 150 pages, strings of pages long gone)."""
    from trafilatura import utils

    html, url = _page()
    caches = (utils.trim, utils.line_processing)
    extract_article(html, url, "text/html; charset=utf-8")
    assert all(c.cache_info().currsize > 0 for c in caches)  # a page fills them (the test tests something)
    assert extract_pool.extract_page(html, url, "text/html; charset=utf-8", None) is not None
    assert [c.cache_info().currsize for c in caches] == [0, 0]


def test_a_workers_first_page_loads_nothing_more() -> None:
    """The forkserver does a page's work before forking the workers (``pagework.warm_up``): what
    only a first page did (imports, the public-suffix list read for the URL to store: ~60 ms a
    worker) is done once for all of them. A worker's first real page then imports no module and
    reads no list."""
    import subprocess
    import sys

    html, url = _page()
    script = (
        "import sys, json\n"
        "import monitor.extract.warm\n"  # what the forkserver runs
        "import tld.utils\n"
        "before, lists = set(sys.modules), len(tld.utils.tld_names)\n"
        "from monitor.pagework import work\n"
        "from monitor.extract import pool\n"
        "mark = pool._trimmed_at\n"
        # event stories on, as by default
        "page = work(sys.stdin.buffer.read(), sys.argv[1], 'text/html', None, sys.argv[1], None, True)\n"
        "print(json.dumps([page is not None, sorted(set(sys.modules) - before), lists, len(tld.utils.tld_names),"
        " mark]))\n")
    out = subprocess.run([sys.executable, "-c", script, url], input=html, capture_output=True, check=True,
                         timeout=120).stdout.decode().strip().splitlines()
    extracted, imported, lists_before, lists_after, mark = json.loads(out[-1])
    assert extracted and imported == []
    assert lists_before == lists_after == 1
    assert mark is None  # the warm-up page's trim mark is not handed to the workers


def test_a_failing_warm_up_does_not_stop_the_forkserver() -> None:
    """The warm-up is a saving: if its sample page fails, the forkserver still starts (it survives
    only an ImportError of what it preloads; anything else would leave every page unextracted)
    and says why."""
    import subprocess
    import sys

    script = ("import monitor.pagework as p\n"
              "def boom():\n    raise RuntimeError('the sample page broke')\n"
              "p.warm_up = boom\n"
              "import monitor.extract.warm\n"
              "print('preloaded')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "preloaded", done.stderr
    assert "warm-up failed" in done.stderr and "the sample page broke" in done.stderr


def _running(pid: int) -> bool:
    """The process exists and has not exited (a zombie has: its parent has yet to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_sigkilled_daemon_leaves_no_extraction_process(tmp_path: Path, site: Site) -> None:
    """SIGKILL (the OOM killer, ``kill -9``) runs nothing of the daemon's: its forkserver and
    workers exit by themselves within seconds, instead of running on with their memory (outside
    a systemd cgroup: a container without an init, a shell, the tests)."""
    items = []
    for i, body in enumerate(unrelated_pages().values()):
        site.pages[f"/a/{i}"] = Page(body)
        items.append((f"/a/{i}", f"Story {i}", datetime(2025, 9, 23, 12, i, tzinfo=UTC)))
    held, release = threading.Event(), threading.Event()

    def hold(req: Request) -> Page:  # a page still downloading at the kill: mid-ingest
        held.set()
        release.wait(60)
        return Page(b"<html><body><p>Too late.</p></body></html>")

    site.pages["/a/held"] = hold
    items.append(("/a/held", "Held", datetime(2025, 9, 23, 13, 0, tzinfo=UTC)))
    site.pages["/feed.xml"] = Page(rss(site, items), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("news", site.url("/feed.xml")),
                       tables="[dedup]\nevents = false\n")
    pids: list[int] = []
    try:
        with start_daemon(cfg) as proc:
            # the forkserver and at least one worker, while a page is on its way
            assert _wait_until(lambda: held.is_set() and len(_extraction_processes(proc.pid)) >= 2, timeout=120), \
                f"no extraction under way:\n{proc.log_text()[-3000:]}"
            pids = _extraction_processes(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        assert _wait_until(lambda: not any(_running(p) for p in pids), timeout=5), \
            f"still running 5 s after the daemon's SIGKILL: {[p for p in pids if _running(p)]} of {pids}"
    finally:
        release.set()
        for pid in pids:  # what a failure left: not the next tests' load
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def tight_cpu_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A page's CPU limits in seconds instead of a minute: the daemon's values are sent with
    each page, so the workers use these."""
    monkeypatch.setattr(extract_pool, "PAGE_CPU_LIMIT", 0.5)
    monkeypatch.setattr(extract_pool, "PAGE_CPU_KILL", 1.5)
    yield
    extract_pool.shutdown()


def test_a_page_that_kills_its_worker_fails_alone(tight_cpu_limits: None) -> None:
    """A worker that dies takes every page handed to the pool with it (``concurrent.futures``
    breaks the whole pool): a burst of new articles was stored with their feeds' text only,
    their pages never read. Now the others are extracted, and so is the next page; only the
    pages that kill a worker, or run past the CPU limits, fail, each with its reason."""
    from tests import pool_tasks

    html, url = _page()
    expected = extract_article(html, url, "text/html; charset=utf-8")

    async def burst() -> list[object]:
        pages = [extract_pool.extract(html, url, "text/html; charset=utf-8") for _ in range(6)]
        hostile = [extract_pool.run(pool_tasks.die), extract_pool.run(pool_tasks.spin_in_c),
                   extract_pool.run(pool_tasks.spin_in_python)]
        return await asyncio.gather(*hostile[:2], *pages, hostile[2], return_exceptions=True)

    started = time.process_time()
    died, stuck, *pages, spun = asyncio.run(burst())
    assert pages == [expected] * 6
    assert isinstance(died, RuntimeError) and str(died) == "the extraction worker died on this page (SIGSEGV)"
    assert isinstance(stuck, extract_pool.PageTooSlow) and "more than 1.5 s of CPU: its worker was stopped" in str(stuck), \
        repr(stuck)
    assert isinstance(spun, extract_pool.PageTooSlow) and "more than 0.5 s of CPU and was given up" in str(spun)
    assert asyncio.run(extract_pool.extract(html, url, "text/html; charset=utf-8")) == expected
    assert time.process_time() - started < 5  # the test process only waited


# The CLI with /dev/shm read-only, as in containers without a writable one: multiprocessing's
# queues cannot make their semaphores there. In a mount namespace of its own where the system
# allows one (root, or unprivileged user namespaces); elsewhere the same error is raised where
# multiprocessing would meet it.
_NO_SHM = ("import errno, os, shutil, subprocess, sys\n"
           "if shutil.which('unshare') and subprocess.run(['unshare', '-m', 'true'], capture_output=True).returncode == 0:\n"
           "    os.execvp('unshare', ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs -o ro none /dev/shm && "
           "exec \"$0\" -m monitor \"$@\"', sys.executable, *sys.argv[1:]])\n"
           "from multiprocessing import synchronize\n"
           "def refused(*args, **kwargs):\n"
           "    raise OSError(errno.EROFS, os.strerror(errno.EROFS))\n"
           "synchronize.SemLock.__init__ = refused\n"
           "from monitor.__main__ import main\n"
           "sys.exit(main())\n")


def test_without_a_writable_dev_shm_pages_are_still_extracted(tmp_path: Path, site: Site) -> None:
    """Where the workers cannot start, every article would be stored with its feed's text only,
    its page fetched and thrown away. The pages are extracted in the daemon's own process
    instead, and the log says why, once."""
    import subprocess
    import sys

    from tests.harness import _env

    items = []
    for i, body in enumerate(unrelated_pages().values()):
        site.pages[f"/a/{i}"] = Page(body)
        items.append((f"/a/{i}", f"Story {i}", datetime(2025, 9, 23, 12, i, tzinfo=UTC)))
    site.pages["/feed.xml"] = Page(rss(site, items), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", source("news", site.url("/feed.xml")),
                       tables="[dedup]\nevents = false\n")
    done = subprocess.run([sys.executable, "-c", _NO_SHM, "--config", str(cfg), "run", "--once"], capture_output=True,
                          text=True, timeout=120, env=_env(None), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("extraction workers cannot start") == 1, done.stderr
    assert "Read-only file system" in done.stderr
    stored = articles(cfg)
    assert len(stored) == len(items)
    assert all(a.full_text and a.fetch_error is None and len(a.text) > 500 for a in stored), \
        [(a.title, a.fetch_error) for a in stored]
