"""Work for the extraction pool's tests that a page could make a worker do: die (lxml has
crashed on hostile markup), or spin inside C code where no Python-level signal handler runs.
Module-level functions: the pool sends them to its workers by name."""

from __future__ import annotations

import os
import signal


def die() -> None:
    """Crash the worker as a segmentation fault in lxml would."""
    os.kill(os.getpid(), signal.SIGSEGV)


def spin_in_c() -> int:
    """Hours of CPU inside one C call that never checks for signals (as a regular expression or
    a parser stuck on a page would be)."""
    return sum(range(10**14))


def spin_in_python() -> None:
    while True:
        pass
