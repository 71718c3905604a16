"""When to poll a source next: its interval, server hints, Retry-After and error backoff.

Pure functions of their inputs (plus a random source for the jitter) so that every rule is
testable without a server or a clock.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from datetime import datetime

from monitor.config import FetchSettings
from monitor.util import backoff, http_date
from monitor.util import retry_after_seconds as retry_after_seconds  # part of this module's face

_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.I)


def cache_hint_seconds(headers: Mapping[str, str], now: datetime, ttl_minutes: int | None = None) -> float | None:
    """How long the server says the response stays fresh: the longest of Cache-Control max-age
    (less Age), Expires and RSS ``<ttl>``; None when it says nothing."""
    hints: list[float] = []
    cc = headers.get("cache-control") or ""
    if not re.search(r"\b(no-store|no-cache)\b", cc, re.I):
        m = _MAX_AGE.search(cc)
        if m:
            age = headers.get("age") or "0"
            hints.append(max(0.0, float(m.group(1)) - (float(age) if age.strip().isdigit() else 0.0)))
        elif headers.get("expires"):
            when = http_date(headers["expires"])
            base = http_date(headers.get("date") or "") or now
            hints.append(max(0.0, (when - base).total_seconds()) if when else 0.0)
    if ttl_minutes is not None and ttl_minutes > 0:
        hints.append(ttl_minutes * 60.0)
    return max(hints) if hints else None


def delay_after_success(interval: float, hint: float | None, settings: FetchSettings) -> float:
    """The source's own interval, lengthened by a server hint clamped to [min, max] interval.

    A hint never shortens the interval the user configured, and the minimum never floors it:
    a test or an impatient user may poll every 5 s if they say so.
    """
    if hint is None or hint <= interval:
        return interval
    return max(interval, min(max(hint, settings.min_interval), settings.max_interval))


def backoff_delay(interval: float, failures: int, settings: FetchSettings,
                  rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, interval * 2**failures), capped at
    ``max_backoff``, never sooner than the regular interval (a failing source is not polled more
    often than a healthy one)."""
    return max(interval, backoff(max(failures, 1), interval, settings.max_backoff, rng, full_jitter=True))


def delay_after_failure(interval: float, failures: int, retry_after: float | None,
                        settings: FetchSettings, rng: random.Random | None = None) -> float:
    """Backoff, or the server's Retry-After if that is longer (itself capped at max_backoff)."""
    delay = backoff_delay(interval, failures, settings, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(settings.max_backoff, interval)))
    return delay
