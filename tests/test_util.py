"""The shared helpers: one Retry-After reading (seconds and HTTP dates) for feeds and channels."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from monitor.deliver.base import DeliveryError, post
from monitor.util import (
    aware,
    backoff,
    human_delta,
    human_duration,
    human_when,
    iso_with_offset,
    plural,
    retry_after_seconds,
)
from tests.servers import Page, Site


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("1.5", now) == 1.5
    assert retry_after_seconds("Wed, 01 Jan 2025 01:00:00 GMT", now) == 3600
    assert retry_after_seconds("Tue, 31 Dec 2024 23:00:00 GMT", now) == 0  # in the past: now
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_a_channel_honours_retry_after_as_an_http_date(site: Site) -> None:
    # A platform answering 503 with an HTTP-date Retry-After: the retry waits that long
    # (the channel code used to read only delta-seconds and retried on its own schedule).
    when = datetime.now(UTC) + timedelta(minutes=10)
    site.pages["/hook"] = Page(b"busy", "text/plain", status=503,
                               headers={"Retry-After": format_datetime(when, usegmt=True)})
    with pytest.raises(DeliveryError) as err:
        asyncio.run(post("hook", "POST", site.url("/hook"), 5.0, json={}))
    assert err.value.retry_after is not None and 590 <= err.value.retry_after <= 600


def test_backoff_grows_with_jitter_and_stays_under_the_cap() -> None:
    rng = random.Random(7)
    first = [backoff(0, 30, 3600, rng) for _ in range(50)]
    assert all(15 <= d <= 30 for d in first) and len(set(first)) > 40
    assert all(1800 <= backoff(20, 30, 3600, rng) <= 3600 for _ in range(50))
    assert all(0 <= backoff(3, 10, 1000, rng, full_jitter=True) <= 80 for _ in range(50))


def test_aware_and_human_delta() -> None:
    naive = datetime(2025, 1, 1, 12, 0)
    assert aware(naive) == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert aware(None) is None
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert human_delta(now + timedelta(minutes=5), now) == "in 5 min"
    assert human_delta(now - timedelta(hours=2), now) == "2 h ago"
    assert human_delta(None, now) == "-"


def test_console_says_times_in_the_words_of_the_cli_listings() -> None:
    """The console's pages and the CLI's listings word a time the same way (the console had its
    own: "a few seconds ago", "3 days ago", "40 days ago" where the CLI said "30 s ago", "3 d ago"
    and the date); a time that never happened reads "never" on a page."""
    from monitor.web.kit import build_templates

    page = build_templates(lambda: ()).from_string("{{ t | when }}")
    now = datetime.now(UTC)
    for t, words in ((now - timedelta(seconds=30.4), "30 s ago"), (now - timedelta(days=3, minutes=1), "3 d ago"),
                     (now + timedelta(minutes=5, seconds=20), "in 5 min")):
        assert page.render(t=t) == words == human_when(t)
    far = now - timedelta(days=40)
    assert page.render(t=far) == f"{far:%Y-%m-%d}" == human_when(far)
    assert page.render(t=None) == "never"


def test_human_terms_for_listings() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    # a rounded value never shows the next unit's worth in the smaller unit
    assert [human_duration(s) for s in (59.6, 3599, 86_399, 90, 7200)] == ["1 min", "1 h", "1 d", "2 min", "2 h"]
    assert human_when(now - timedelta(days=3), now) == "3 d ago"
    assert human_when(datetime(2023, 9, 24, 22, 18), now) == "2023-09-24"  # far away: the date, not "465 d ago"
    assert human_when(None, now) == "-"
    assert [plural(n, w) for n, w in ((1, "source"), (2, "match"), (3, "delivery"), (0, "alert"), (2, "article_vector"))] \
        == ["1 source", "2 matches", "3 deliveries", "0 alerts", "2 article vectors"]
    assert iso_with_offset("2025-09-24T07:15:00") == "2025-09-24T07:15:00+00:00"
    assert iso_with_offset("2025-09-24T10:15:00+03:00") == "2025-09-24T10:15:00+03:00"
