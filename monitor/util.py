"""Small helpers every stage needs, written once: durations, aware datetimes, instance ids,
backoff with jitter, Retry-After, the Accept header for HTML pages.

Imports nothing from monitor, so any module (config included) may use it.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol, overload

HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"


def cache_dir() -> Path:
    """Where what is made once per machine is kept (the unpacked language model, compiled speaker
    patterns): ``$MONITOR_CACHE_DIR``, else the user's cache. OSError without either: every
    caller then does without a cache, as with one it cannot write."""
    if found := os.environ.get("MONITOR_CACHE_DIR"):
        return Path(found)
    if found := os.environ.get("XDG_CACHE_HOME"):
        return Path(found) / "monitor"
    try:
        return Path.home() / ".cache" / "monitor"
    except RuntimeError as exc:  # no $HOME and no passwd entry (a container's arbitrary user)
        raise OSError(f"no cache directory: set MONITOR_CACHE_DIR ({exc})") from exc



def code_version(*versions: str, files: tuple[str, ...] = ()) -> str:
    """A short hash naming what a cache keeps by what makes it: ``versions`` (a library's, a
    layout's) and the source of ``files`` (our modules that make or read it), so a change to
    any of them names a new file instead of reading one made otherwise. A file that cannot be
    read (a zipped install) is left out."""
    import hashlib

    digest = hashlib.sha256("\0".join(versions).encode())
    for name in files:
        with contextlib.suppress(OSError):
            digest.update(Path(name).read_bytes())
    return digest.hexdigest()[:32]


PRUNE_AFTER = 86400.0  # a cache file of another version older than this goes when a new one is written


def keep_file(path: Path, data: bytes, prune: tuple[str, str] | None = None) -> None:
    """Writes ``data`` to ``path`` whole or not at all (another process may read it meanwhile);
    a directory that cannot be written keeps nothing.

    ``prune``: (glob, prefix) of a cache's versioned files: the files in ``path``'s folder
    matching the glob whose names do not start with this version's prefix, written more than
    ``PRUNE_AFTER`` ago, are removed. A cache named by version (a library's, our code's) gained a
    file set with every upgrade and never lost one (~1 MB of speaker patterns each). Only old
    ones go: two versions in use on one machine at once (a deploy's overlap, a benchmark's
    before/after) would otherwise delete each other's files on every start, and each recompile
    them."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    if prune is None:
        return
    pattern, prefix = prune
    cutoff = time.time() - PRUNE_AFTER
    with contextlib.suppress(OSError):
        for old in path.parent.glob(pattern):
            if not old.name.startswith(prefix):
                with contextlib.suppress(OSError):  # another process may prune it first
                    if old.stat().st_mtime < cutoff:
                        old.unlink()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


MAX_DURATION = 3650 * 86400.0  # ten years: now + any duration stays a valid datetime


def parse_duration(value: object) -> float:
    """Seconds from ``"5m"``, ``"90s"``, ``"1h"``, ``"2d"`` or a bare number of seconds.

    Finite, positive and at most ten years: ``inf``, ``nan`` or ``"4000000d"`` used to pass
    the config check and then crash the scheduler on ``now + interval``.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f'not a duration: {value!r} (write e.g. "90s", "5m", "1h")')
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r}")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"duration must be positive: {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"duration must be at most 3650d: {value!r}")
    return seconds


@overload
def aware(dt: datetime) -> datetime: ...
@overload
def aware(dt: None) -> None: ...
def aware(dt: datetime | None) -> datetime | None:
    """The same instant with UTC attached when it has no zone: SQLite hands back naive UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None and dt.tzinfo.utcoffset(dt) is not None else dt.replace(tzinfo=UTC)


class Dated(Protocol):
    """What ``too_old`` reads of an article: a stored row, an ``Article``, or a row of its columns."""

    @property
    def first_seen_at(self) -> datetime: ...
    @property
    def published(self) -> datetime | None: ...
    @property
    def published_estimated(self) -> bool: ...


def too_old(article: Dated, max_age: float | None, now: datetime | None = None) -> bool:
    """Whether ``article`` is past ``[monitor] alert_max_age``: by its publication date, or by
    when it was first seen when it has none (an estimated date is the first-seen time). Here,
    not in ``monitor.ingest``: a poll's lookup of changed entries asks it before the ingest
    stages are imported."""
    if max_age is None:
        return False
    when = article.first_seen_at if article.published is None or article.published_estimated else article.published
    return ((now or datetime.now(UTC)) - aware(when)).total_seconds() > max_age


def iso_with_offset(value: str | None) -> str | None:
    """An ISO 8601 timestamp that carries its offset: one stored without (naive UTC, as older
    alerts and SQLite have them) gets ``+00:00``; anything that is no timestamp is kept as is."""
    if not value:
        return value
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return value
    return value if dt.tzinfo is not None else aware(dt).isoformat()


def utcnow() -> datetime:
    return datetime.now(UTC)


def instance_id() -> str:
    """A name for this process: readable in the database (host and pid), unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def backoff(exponent: int, base: float, cap: float, rng: random.Random | None = None,
            full_jitter: bool = False) -> float:
    """Exponential backoff with jitter, so that many clients retrying do not come back together.

    The ceiling is ``base * 2**exponent`` capped at ``cap``; the delay is uniform in
    [ceiling/2, ceiling] ("equal jitter": never much sooner than planned), or in [0, ceiling]
    with ``full_jitter`` (callers that floor the delay themselves).
    """
    ceiling = min(cap, base * 2 ** min(max(0, exponent), 60))
    return (rng or random.Random()).uniform(0.0 if full_jitter else ceiling / 2, ceiling)


def http_date(value: str) -> datetime | None:
    """An HTTP date (``Wed, 21 Oct 2015 07:28:00 GMT``) as an aware datetime, or None."""
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return aware(dt)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds (``120``, ``1.5``) or an HTTP date;
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    when = http_date(value)
    if when is None:
        return None
    return max(0.0, (when - (now or utcnow())).total_seconds())


def plural(n: int, noun: str) -> str:
    """``1 source``, ``2 sources``, ``3 matches``, ``2 deliveries``, ``4 article vectors``: a count
    a user reads as a sentence (a table name's underscores become spaces)."""
    noun = noun.replace("_", " ")
    if n == 1:
        return f"{n} {noun}"
    if noun.endswith(("s", "x", "ch", "sh")):
        return f"{n} {noun}es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f"{n} {noun[:-1]}ies"
    return f"{n} {noun}s"


def human_duration(seconds: float) -> str:
    """``45 s``, ``5 min``, ``2 h``, ``3 d``: rounded to the largest unit that fits."""
    s = abs(seconds)
    if round(s) < 60:
        return f"{s:.0f} s"
    if round(s / 60) < 60:  # 3,599 s is "1 h", not "60 min"
        return f"{s / 60:.0f} min"
    if round(s / 3600) < 24:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


def human_delta(when: datetime | None, now: datetime | None = None) -> str:
    """``in 5 min`` / ``2 h ago`` / ``now`` / ``-`` for a moment relative to now."""
    if when is None:
        return "-"
    delta = (aware(when) - (now or utcnow())).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {human_duration(delta)}" if delta > 0 else f"{human_duration(delta)} ago"


def human_when(when: datetime | None, now: datetime | None = None, none: str = "-") -> str:
    """A moment as a listing (CLI or console) shows it: ``5 min ago`` / ``in 2 h`` within a week,
    the date (``2025-09-23``) further away, which reads better than ``436 d ago``; ``none`` for
    none (``-`` in a table, the console's "never")."""
    if when is None:
        return none
    if abs((aware(when) - (now or utcnow())).total_seconds()) < 7 * 86400:
        return human_delta(when, now)
    return f"{aware(when).astimezone(UTC):%Y-%m-%d}"


__all__ = ["HTML_ACCEPT", "aware", "backoff", "http_date", "human_delta", "human_duration", "human_when",
           "instance_id", "iso_with_offset", "parse_duration", "plural", "retry_after_seconds", "utcnow"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A package's module ``__getattr__`` (PEP 562) that imports each public name from its module
    on first use: importing the package for one light module (a stage's config checks) then
    does not import the heavy rest (SQLAlchemy, NumPy, lxml), so ``check-config`` stays quick.
    The package lists the same names under ``if TYPE_CHECKING:`` imports for mypy."""
    import importlib
    import sys

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value
    return __getattr__
