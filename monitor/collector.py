"""The cyclic garbage collector's one owner: when what the process has built is moved out of its
reach (``gc.freeze``), and when it is handed back.

Why freeze at all: most of what a process makes lives as long as it does (modules, classes, the
tables, the compiled rules, the story index). Refcounting frees what is not in a reference
cycle without the collector; the collector's full passes only walk the long-lived objects again
and find nothing, tens of ms each with ~0.1 M objects (issue 15). ``gc.freeze`` moves every
tracked object into the permanent generation, which no pass walks. The points that do it:

- the daemon, once start-up is over (``Daemon.run``: what start-up imported and built);
- ``Pipeline.prepare``, once the ingest stages are imported and the rules compiled;
- a large ``RuleSet`` (``building``): 10,000 rules are hundreds of thousands of objects;
- the extraction pool's forkserver (``monitor.extract.warm``), before it forks the workers:
  the collector writes to every object it scans (its marks), which would make each worker copy
  the pages it shares with the forkserver; there a collection goes first (``collect_first``),
  so the garbage of loading is not frozen into every worker.

The price: a frozen object in a reference cycle is never freed, even when nothing refers to it
any more. That is why ``release`` exists: a reload replaces the whole pipeline (rules, story
index, fetcher: objects in cycles), frozen with the rest, and the old one stayed for good on
every reload until ``release`` handed it back (unfreeze, collect once, freeze again).

Start-up's pause (``gc.disable`` in ``monitor run`` and ``check-config``, the collector back on
in ``Daemon.run`` and ``run_once``) is the same reasoning for the time before there is anything
to freeze: its passes over the objects being made cost ~8 % of the CPU to the first poll.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze(collect_first: bool = False) -> None:
    """What exists now lives as long as the process: no later full collection walks it.
    ``collect_first``: the garbage made so far is collected rather than frozen with it."""
    if collect_first:
        gc.collect()
    gc.freeze()


def release() -> None:
    """Hand what was frozen back to the collector, collect once, and freeze what remains: a
    replaced object graph (a reload's old pipeline) in reference cycles is then freed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@contextmanager
def building(bulk: bool) -> Iterator[None]:
    """The collector paused while long-lived objects without reference cycles are built (each
    pass would walk all built so far and find nothing: seven for 10,000 rules, a third of their
    compile). ``bulk`` (a large build, with the collector on): collect first, while the heap is
    still small, and freeze what was built, so neither one more pass here nor any later full one
    walks it. Having no cycles, a replaced build is still freed by refcounting."""
    bulk = bulk and gc.isenabled()
    if bulk:
        gc.collect()
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if bulk:
            gc.freeze()
        if paused:
            gc.enable()
