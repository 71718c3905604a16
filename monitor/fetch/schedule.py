"""When to poll a source next: its interval, server hints, Retry-After and error backoff.

Pure functions of their inputs (plus a random source for the jitter) so that every rule is
testable without a server or a clock.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from monitor.config import FetchSettings

_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.I)


def _http_date(value: str) -> datetime | None:
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


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
            when = _http_date(headers["expires"])
            base = _http_date(headers.get("date") or "") or now
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
    rng = rng or random.Random()
    ceiling = min(settings.max_backoff, interval * 2 ** min(max(failures, 1), 40))
    return max(interval, rng.uniform(0, ceiling))


def delay_after_failure(interval: float, failures: int, retry_after: float | None,
                        settings: FetchSettings, rng: random.Random | None = None) -> float:
    """Backoff, or the server's Retry-After if that is longer (itself capped at max_backoff)."""
    delay = backoff_delay(interval, failures, settings, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(settings.max_backoff, interval)))
    return delay
