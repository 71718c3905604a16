"""Hosts that asked us to wait: a 429 or 503 with ``Retry-After`` holds every article page (and
robots.txt) of that host until then.

A source's own Retry-After moves its next poll (``monitor.fetch.state``), but article pages are
fetched per entry: before these holds, ten pages of a host that answered the first with "429,
Retry-After: 3600" were all requested within 80 ms, and the next poll sent ten more. A hold is
kept per host name (as the per-host request limit is), in the process: by one ``HostHolds`` per
database (``holds_for``), so that a pipeline the daemon builds again on a config reload keeps its
predecessor's holds. Nothing is stored in the database, so a new ``run --once`` process starts
without them (and finds out again with at most ``per_host`` requests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.util import retry_after_seconds

log = logging.getLogger(__name__)

HOLD_STATUSES = (429, 503)  # the answers whose Retry-After holds the host (RFC 9110 15.5.x, RFC 6585)


@dataclass(frozen=True)
class Hold:
    """Until when a host is held, and what asked for it."""

    host: str
    until: datetime  # wall clock, for messages and stored errors
    deadline: float  # the clock's (monotonic) time it ends: a clock change moves no hold
    status: int

    def reason(self) -> str:
        """Why a page of this host is not fetched, for the article's stored error and the log."""
        return (f"held by {self.host}'s Retry-After (HTTP {self.status}) until "
                f"{self.until:%Y-%m-%d %H:%M:%S} UTC")


class HostHolds:
    """The holds in force, by host name; an ended one is forgotten when next looked at.

    Used on the event loop only (the fetcher's requests), so it needs no lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._holds: dict[str, Hold] = {}

    def note(self, host: str, status: int, retry_after: str | None, cap: float,
             now: datetime | None = None) -> Hold | None:
        """Hold ``host`` after a ``status`` answer with this ``Retry-After`` (seconds or an HTTP
        date), for at most ``cap`` seconds (``[fetch] max_backoff``, as a source's own Retry-After
        is capped: a server's "come back next year" is not taken at its word). A longer hold in
        force stays. Returns the hold now in force, None if the answer asks for none."""
        if status not in HOLD_STATUSES:
            return None
        now = now or datetime.now(UTC)
        seconds = retry_after_seconds(retry_after, now)
        if seconds is None or seconds <= 0:
            return self.get(host)
        seconds = min(seconds, cap)
        held = self.get(host)
        deadline = self._clock() + seconds
        if held is not None and held.deadline >= deadline:
            return held
        hold = self._holds[host] = Hold(host, now + timedelta(seconds=seconds), deadline, status)
        # Said once a hold, not again for each answer that lengthens it (the requests in flight
        # when the first came back answer alike)
        log.log(logging.DEBUG if held is not None else logging.WARNING,
                "%s answered HTTP %s with Retry-After %s: no article page of it is fetched until %s UTC",
                host, status, retry_after, f"{hold.until:%Y-%m-%d %H:%M:%S}")
        return hold

    def get(self, host: str) -> Hold | None:
        """The hold on ``host`` in force now, if any."""
        hold = self._holds.get(host)
        if hold is not None and hold.deadline <= self._clock():
            del self._holds[host]
            return None
        return hold


_BY_DATABASE: dict[str, HostHolds] = {}


def holds_for(database: str) -> HostHolds:
    """The holds of the monitor storing into ``database``, one per process: the daemon's config
    reload builds a new pipeline (and fetcher) for the same database, and a host that asked to
    wait an hour is not asked again because the config changed."""
    holds = _BY_DATABASE.get(database)
    if holds is None:
        holds = _BY_DATABASE[database] = HostHolds()
    return holds
