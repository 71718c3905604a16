"""A time and depth budget for parsing one document, off the event loop.

feedparser's forgiving parser and BeautifulSoup's html.parser are pure Python: a 7 MB feed of
deeply nested markup kept the event loop for 27 s, so no other source was polled meanwhile and
SIGTERM waited. Parsing therefore runs in a small pool of threads (``off_loop``), and:

- **depth**: a document nested deeper than ``MAX_DEPTH`` elements is refused before parsing
  (``check_depth``; real feeds and pages stay below ~60). The check is one regular-expression
  pass, so it costs a fraction of the parse it saves.
- **time**: a parse still running after its budget is stopped: the source gets an error naming
  the budget, and the worker thread is interrupted (an exception raised into it at its next
  Python instruction; the parsers are pure Python, so that is soon) so it is free for the next
  document instead of finishing work nobody waits for.
"""

from __future__ import annotations

import asyncio
import ctypes
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

PARSE_SECONDS = 15.0
MAX_DEPTH = 512
DEPTH_CHECK_FROM = 64 * 1024  # smaller documents cannot be slow enough to matter
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="parse")
_TAG = re.compile(r"<(/?)[A-Za-z][^<>]*?(/?)>")
_VOID = re.compile(r"<(?:area|base|br|col|embed|hr|img|input|link|meta|source|track|wbr|param)\b", re.I)


class BudgetExceeded(Exception):
    """The document was too deep, or parsing it took longer than its budget."""


class _Interrupted(BaseException):
    """Raised into a parse thread past its budget (BaseException: parsers' ``except Exception``
    must not swallow it)."""


def nesting_depth(text: str, stop_at: int = MAX_DEPTH) -> int:
    """The deepest element nesting of ``text``'s markup (unclosed tags count as open), up to
    ``stop_at``."""
    depth = deepest = 0
    for m in _TAG.finditer(text):
        if m.group(1):
            depth = max(0, depth - 1)
        elif not m.group(2) and not _VOID.match(m.group(0)):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest >= stop_at:
                    break
    return deepest


def check_depth(text: str | bytes, what: str = "document") -> None:
    """Raise BudgetExceeded when ``text`` is nested deeper than MAX_DEPTH."""
    if len(text) < DEPTH_CHECK_FROM:
        return
    s = text.decode("latin-1") if isinstance(text, bytes) else text
    if nesting_depth(s) >= MAX_DEPTH:
        raise BudgetExceeded(f"{what} nested deeper than {MAX_DEPTH} elements; not parsed")


class _Job:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: int | None = None
        self.running = False
        self.abandoned = False

    def interrupt(self) -> None:
        with self.lock:
            self.abandoned = True
            if self.running and self.thread is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread),
                                                           ctypes.py_object(_Interrupted))


async def off_loop(fn: Callable[[], T], *, document: str | bytes | None = None,
                   budget: float | None = None, what: str = "document") -> T:
    """``fn()`` in the parse pool, after ``check_depth(document)``; BudgetExceeded if the
    document is too deep or ``fn`` runs longer than ``budget`` (default PARSE_SECONDS)."""
    budget = PARSE_SECONDS if budget is None else budget
    job = _Job()

    def run() -> T:
        with job.lock:
            if job.abandoned:
                raise BudgetExceeded(f"{what}: abandoned before it started")
            job.thread, job.running = threading.get_ident(), True
        try:
            if document is not None:
                check_depth(document, what)
            return fn()
        except _Interrupted:
            raise BudgetExceeded(f"{what}: interrupted") from None
        finally:
            with job.lock:
                job.running = False

    future = asyncio.get_running_loop().run_in_executor(_POOL, run)
    try:
        return await asyncio.wait_for(asyncio.shield(future), budget)
    except TimeoutError:
        job.interrupt()
        future.add_done_callback(lambda f: f.exception())  # retrieved: no "never retrieved" noise
        raise BudgetExceeded(f"parsing the {what} took longer than {budget:g} s; stopped") from None
