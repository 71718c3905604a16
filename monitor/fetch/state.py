"""Polling state after each poll: validators, the next poll time, failures, notices.

Everything lives on the ``source`` row, so a restart neither refetches early nor forgets a
backoff or a Retry-After.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.clean import redact
from monitor.config import FetchSettings, SourceConfig
from monitor.fetch.schedule import (
    cache_hint_seconds,
    delay_after_failure,
    delay_after_success,
    retry_after_seconds,
)
from monitor.store.source_table import stored_url
from monitor.util import aware

if TYPE_CHECKING:
    from sqlalchemy import Table

log = logging.getLogger(__name__)


@dataclass
class PollOutcome:
    """What one poll of a source produced, as far as scheduling cares."""

    status: int | None  # HTTP status; None when no response came
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ttl_minutes: int | None = None
    new_url: str | None = None  # permanent redirect or discovered feed: poll this from now on
    new_url_reason: str = ""
    # Links left for the next poll (``max_links_per_poll``): keep no validators, so the next poll
    # reads the page again instead of a 304, and come back within ``min_interval``.
    more: bool = False


@dataclass
class PollState:
    """A source row's polling state, the columns ``apply_outcome`` reads and writes.

    Plain data instead of an ORM object: a poll that got a 304 is a few microseconds of Python
    here, and the new values are written in batches by ``changes`` (issue 15)."""

    id: int
    url: str
    etag: str | None
    last_modified: str | None
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    last_success_at: datetime | None
    broken_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    poll_interval: float | None

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """The source table's columns, in field order (the constructor takes a row of them)."""
        return _columns(cls)

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _columns(type(self)))

    def changes(self, before: tuple[Any, ...]) -> dict[str, Any]:
        """Columns whose value differs from ``before`` (``values()`` as read): only they are
        written, as the ORM would, so a concurrent edit of another column (a config reload
        re-planning the schedule) is not overwritten with what was read."""
        names = _columns(type(self))
        return {name: new for name, old, new in zip(names, before, self.values(), strict=True) if old != new}


@dataclass
class SourceRow(PollState):
    """A source row as ``sync_source_row`` reads and edits it: the polling state, and the URL
    and type the config gave. Plain data, read and written by Core statements, for the same
    reason as ``PollState``, and because the daemon syncs its sources before its first poll,
    which no longer waits for the ORM (``monitor.store.source_table``)."""

    config_url: str | None
    kind: str


_COLUMNS: dict[type[PollState], tuple[str, ...]] = {}


def _columns(cls: type[PollState]) -> tuple[str, ...]:
    names = _COLUMNS.get(cls)
    if names is None:
        names = _COLUMNS[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass(frozen=True)
class Notice:
    kind: str  # broken | recovered | gone
    key: str  # stable per episode, so a retried transaction sends it once
    subject: str
    text: str

    def __post_init__(self) -> None:
        # Stored in the alert's payload and sent to every channel: the source's URL and the
        # last error (which quotes the URL) with their secrets masked, whoever builds a notice.
        object.__setattr__(self, "text", redact(self.text))
        object.__setattr__(self, "subject", redact(self.subject))


def sync_source_row(row: SourceRow, sc: SourceConfig) -> bool:
    """Apply a config edit to a stored source; True if the row changed.

    ``url`` may differ from the config after a 301/308 or autodiscovery; only a change of the
    configured URL itself resets the polling state (validators, failures, disabled mark).
    Both are kept as stored (``stored_url``: secrets masked): a row written before that, with
    the secret in it, is rewritten masked and keeps its state; a new value of a secret in the
    environment (a rotated token) is the same source, not a config edit.
    """
    configured = row.config_url or row.url
    url = stored_url(sc.url)
    changed = False
    if configured not in (url, sc.url):
        row.url = row.config_url = url
        row.etag = row.last_modified = None  # validators belong to the old URL
        row.consecutive_failures = 0
        row.broken_since = row.disabled_at = None
        row.disabled_reason = row.last_error = None
        row.next_poll_at = None
        changed = True
    elif row.config_url != url or stored_url(row.url) != row.url:
        row.config_url, row.url = url, stored_url(row.url)
        changed = True
    if row.kind != sc.type:
        row.kind = sc.type
        row.etag = row.last_modified = None
        changed = True
    if row.poll_interval != sc.interval:
        replan_next_poll(row, sc.interval)
        changed = True
    return changed


def replan_next_poll(row: SourceRow, interval: float) -> None:
    """A changed ``interval`` applies now (on start and reload), not after the old schedule fires:
    the next poll is the last poll plus the new interval. A server hint that lengthened the old
    delay still counts; a failing source keeps its backoff; an unknown old interval (a database
    from before this was recorded) only ever brings the next poll closer."""
    old, last, nxt = row.poll_interval, aware(row.last_polled_at), aware(row.next_poll_at)
    row.poll_interval = interval
    if last is None or nxt is None or row.consecutive_failures:
        return
    planned = (nxt - last).total_seconds()
    if old is None:
        delay = min(planned, interval)
    elif planned > old + 1:  # lengthened by a server hint (Cache-Control, <ttl>)
        delay = max(interval, planned)
    else:
        delay = interval
    row.next_poll_at = last + timedelta(seconds=delay)


def apply_outcome(row: PollState, sc: SourceConfig, outcome: PollOutcome, settings: FetchSettings,
                  started: datetime, rng: random.Random | None = None) -> list[Notice]:
    """Update ``row`` for one poll; return the notices to send (broken, recovered, gone)."""
    notices: list[Notice] = []
    now = started
    row.last_polled_at = started
    row.last_status = outcome.status
    # Compared and kept as stored: a new URL that holds a secret is stored masked, and its
    # source then polls the config's URL, which leads to it again (``poll_url``) without being
    # a move each time.
    if outcome.new_url and stored_url(outcome.new_url) != row.url:
        log.warning("source %s (%s): %s: now polling %s instead of %s", row.id, sc.name,
                    outcome.new_url_reason or "moved", outcome.new_url, row.url)
        row.url = stored_url(outcome.new_url)

    if outcome.status == 410:
        row.disabled_at = now
        row.disabled_reason = outcome.error or "HTTP 410 Gone"
        row.consecutive_failures += 1
        row.last_error = row.disabled_reason
        row.next_poll_at = None
        text = (f"The source {sc.name!r} ({row.url}) answered 410 Gone: it was removed for good. "
                "It is no longer polled; change or remove it in the config.")
        log.warning("source %s (%s): gone (410), disabled", row.id, sc.name)
        notices.append(Notice("gone", f"source-gone:{sc.name}:{now.isoformat()}",
                              f"Source gone: {sc.name}", text))
        return notices

    if outcome.error is None:
        if row.broken_since is not None:
            down = now - aware(row.broken_since)
            text = (f"The source {sc.name!r} ({row.url}) works again after "
                    f"{row.consecutive_failures} failed polls (reported broken {_ago(down)} ago).")
            log.warning("source %s (%s): recovered", row.id, sc.name)
            notices.append(Notice("recovered", f"source-recovered:{sc.name}:{aware(row.broken_since).isoformat()}",
                                  f"Source recovered: {sc.name}", text))
        row.broken_since = None
        values, (etag, last_modified, keep) = success_values(sc, outcome, settings, now)
        for name, value in values.items():
            setattr(row, name, value)
        row.etag = (etag or row.etag) if keep else etag
        row.last_modified = (last_modified or row.last_modified) if keep else last_modified
        return notices

    row.consecutive_failures += 1
    row.last_error = outcome.error
    retry_after = None
    if outcome.status in (429, 503):
        retry_after = retry_after_seconds(outcome.headers.get("retry-after"), now)
    delay = delay_after_failure(sc.interval, row.consecutive_failures, retry_after, settings, rng)
    if retry_after is not None:
        log.info("source %s (%s): HTTP %s, Retry-After %.0fs: next poll in %.0fs", row.id, sc.name,
                 outcome.status, retry_after, delay)
    if row.consecutive_failures >= settings.broken_after and row.broken_since is None:
        row.broken_since = now
        text = (f"The source {sc.name!r} ({row.url}) failed {row.consecutive_failures} polls in a row. "
                f"Last error: {outcome.error}. It keeps being retried (backoff up to "
                f"{_ago(timedelta(seconds=settings.max_backoff))}); a notice follows when it recovers.")
        log.error("source %s (%s): broken: %s", row.id, sc.name, text)
        notices.append(Notice("broken", f"source-broken:{sc.name}:{now.isoformat()}",
                              f"Source broken: {sc.name}", text))
    row.next_poll_at = now + timedelta(seconds=delay)
    row.poll_interval = sc.interval
    return notices


def _validators(outcome: PollOutcome) -> tuple[str | None, str | None, bool]:
    """(ETag, Last-Modified, keep the stored ones where these are empty) after a successful poll."""
    if outcome.status == 304:
        # A 304 may carry updated validators; otherwise keep the ones we sent.
        return outcome.etag or None, outcome.last_modified or None, True
    if outcome.more:
        return None, None, False
    # Exactly what the server sent; nothing invented when it sent none.
    return outcome.etag, outcome.last_modified, False


def next_poll_after_success(sc: SourceConfig, outcome: PollOutcome, settings: FetchSettings,
                            now: datetime) -> datetime:
    delay = delay_after_success(sc.interval, cache_hint_seconds(outcome.headers, now, outcome.ttl_minutes), settings)
    if outcome.more:
        delay = min(delay, settings.min_interval)
    return now + timedelta(seconds=delay)


class SuccessColumns(TypedDict):
    """The columns a successful poll sets whatever its row held (the validators aside, which it
    may keep): ``success_values``'s, and the ones ``plain_success_update`` writes."""

    last_polled_at: datetime
    last_status: int | None
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime
    next_poll_at: datetime
    poll_interval: float


def success_values(sc: SourceConfig, outcome: PollOutcome, settings: FetchSettings,
                   started: datetime) -> tuple[SuccessColumns, tuple[str | None, str | None, bool]]:
    """What a successful poll writes on its source row: the columns set whatever the row held,
    and the validators (ETag, Last-Modified, keep the stored ones where these are empty).

    The one builder of these values for both ways they are written: ``apply_outcome`` sets them
    on a row read first, ``plain_success_update`` writes them without reading it."""
    values = SuccessColumns(last_polled_at=started, last_status=outcome.status, consecutive_failures=0,
                            last_error=None, last_success_at=started, poll_interval=sc.interval,
                            next_poll_at=next_poll_after_success(sc, outcome, settings, started))
    return values, _validators(outcome)


def plain_success(sc: SourceConfig, outcome: PollOutcome, settings: FetchSettings,
                  started: datetime) -> dict[str, Any] | None:
    """``success_values`` for a successful poll that needs nothing of the row (no new address),
    as the parameters of ``plain_success_update``; None for any other outcome.

    Most polls are such (a 304 above all): written by one UPDATE per batch (executemany) without
    reading the rows first. The statement applies only to a row that is not marked broken (its
    recovery sends a notice): a row it skips goes through ``apply_outcome``."""
    if outcome.error is not None or outcome.status == 410 or outcome.new_url:
        return None
    values, (etag, last_modified, keep) = success_values(sc, outcome, settings, started)
    return {**{f"p_{name}": value for name, value in values.items()},
            "p_etag": etag, "p_last_modified": last_modified, "p_keep": keep}


def plain_success_update(source: Table) -> Any:
    """The UPDATE of ``plain_success``'s parameters plus ``b_id`` (the source's id): each of
    ``success_values``'s columns set to its value, and the validators replaced, or kept where
    the new ones are empty, as ``apply_outcome`` does."""
    from sqlalchemy import Boolean, bindparam, case, func, update

    t, keep = source.c, bindparam("p_keep", type_=Boolean())
    etag, last_modified = bindparam("p_etag", type_=t.etag.type), bindparam("p_last_modified", type_=t.last_modified.type)
    return (update(source).where(t.id == bindparam("b_id"), t.broken_since.is_(None))
            .values({**{name: bindparam(f"p_{name}", type_=t[name].type) for name in SuccessColumns.__annotations__},
                     "etag": case((keep, func.coalesce(etag, t.etag)), else_=etag),
                     "last_modified": case((keep, func.coalesce(last_modified, t.last_modified)), else_=last_modified)}))


def _ago(d: timedelta) -> str:
    s = int(d.total_seconds())
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s / 3600:.1f} h"
