"""Absurd publication dates (issue 17.10): 9999-12-31, 0001-01-01, year 0000 or 99999, a date
years ahead. None is ever taken as real, and none loses its article: it is stored undated (the
time first seen, flagged as estimated) with a warning naming the date."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.parse.dates import parse_date
from monitor.sources.sitemap import parse_w3c_date
from monitor.util import aware
from tests.fetch_helpers import articles, run_once
from tests.harness import source, write_config
from tests.servers import Page, Site

ABSURD = {
    "max": "Fri, 31 Dec 9999 23:59:59 GMT",
    "max-iso": "9999-12-31T23:59:59Z",
    "min": "0001-01-01T00:00:00Z",
    "min-rfc": "Mon, 01 Jan 0001 00:00:00 GMT",  # the email parser read it as 2001-01-01
    "zero": "01 Jan 0000",
    "zero-rfc": "Mon, 01 Jan 0000 00:00:00 GMT",  # ... and this one as 2000-01-01
    "five-digits": "99999-01-01",  # feedparser read it as 9999-12-01
    "five-digits-rfc": "Mon, 01 Jan 99999 00:00:00 GMT",
    "epoch": "1970-01-01T00:00:00Z",
    "ahead": "2031-06-01T00:00:00Z",
    # Not dates at all, but long: a 5,000-digit "year" raised Python's integer-conversion limit
    # (the entry was dropped), and dateparser read a date in 20 KB of punctuation, seconds later.
    "digits": "2024-" + "1" * 5000,
    "punctuation": "1 " + "?" * 20000 + "x",
}


@pytest.mark.parametrize("raw", ABSURD.values(), ids=ABSURD.keys())
def test_an_absurd_date_is_not_a_date(raw: str) -> None:
    assert parse_date(raw) is None
    assert parse_date(raw, timezone="Asia/Tokyo") is None
    assert parse_date(raw, timezone="America/New_York") is None


def test_real_dates_stay_dates() -> None:
    assert parse_date("Wed, 24 Sep 25 07:00:00 GMT") == datetime(2025, 9, 24, 7, tzinfo=UTC)
    assert parse_date("Wed, 24 Sep 2025 07:00:00 GMT") == datetime(2025, 9, 24, 7, tzinfo=UTC)
    assert parse_date("1999-12-31T23:00:00Z") == datetime(1999, 12, 31, 23, tzinfo=UTC)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)  # a zone slip, not absurd
    assert parse_date(soon.isoformat()) == soon


def test_a_sitemap_url_dated_9999_is_undated() -> None:
    assert parse_w3c_date("9999-12-31") is None
    assert parse_w3c_date("0001-01-01T00:00:00+03:00") is None
    assert parse_w3c_date("2025-09-24") == datetime(2025, 9, 24, tzinfo=UTC)


def test_entries_with_absurd_dates_are_kept_with_an_estimated_date(tmp_path: Path, site: Site,
                                                                   database_url: str) -> None:
    items = "".join(f"<item><title>{name}</title><link>http://example.org/{name}</link>"
                    f"<description>{name} body</description><pubDate>{raw}</pubDate></item>"
                    for name, raw in [*ABSURD.items(), ("real", "Wed, 24 Sep 2025 07:00:00 GMT")])
    site.pages["/feed.xml"] = Page(f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
                                   f"<link>http://example.org/</link>{items}</channel></rss>".encode(),
                                   "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", database_url,
                       source("Feed", site.url("/feed.xml"), full_text=False))
    before = datetime.now(UTC)
    [report] = asyncio.run(run_once(cfg))
    after = datetime.now(UTC)
    assert report.status == "ok" and report.new_articles == len(ABSURD) + 1, report
    stored = {a.title: a for a in articles(cfg)}
    for name in ABSURD:
        a = stored[name]
        published = aware(a.published)
        assert a.published_estimated and published is not None, name
        assert before - timedelta(seconds=1) <= published <= after, (name, a.published)
    assert not stored["real"].published_estimated
    assert aware(stored["real"].published) == datetime(2025, 9, 24, 7, tzinfo=UTC)
    warned = "\n".join(report.warnings)
    assert "implausible date 'Fri, 31 Dec 9999 23:59:59 GMT' (read as 9999-12-31): not taken as real" in warned
    assert "implausible date '0001-01-01T00:00:00Z' (read as 0001-01-01)" in warned
    assert f"unreadable date {ABSURD['punctuation'][:100] + '…'!r}" in warned  # a line, not 20 KB


@pytest.mark.parametrize("raw", ["01 Jan 0000", "Mon, 01 Jan 99999 00:00:00 GMT", "Mon, 01 Jan 0000 00:00:00 +0100",
                                 "N/A", "unknown", "—", ABSURD["digits"], ABSURD["punctuation"]])
def test_hopeless_dates_never_load_every_language(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """dateparser's first look at a string in no known language loads all its languages (16 s on a
    loaded machine: the feed of the issue then ran past its parse budget and failed whole)."""
    import dateparser

    def loads_everything(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"dateparser asked about {raw!r}")

    monkeypatch.setattr(dateparser, "parse", loads_everything)
    assert parse_date(raw) is None


def test_a_page_whose_date_metadata_is_not_a_date_still_extracts() -> None:
    """The page's own date metadata goes through the same reading: a 5,000-digit "year" there made
    the extraction of the whole page raise (Python's integer-conversion limit)."""
    from monitor.extract.article import extract_article

    body = "<p>The minister said the talks would resume in Astana next week, officials told reporters.</p>" * 8
    html = (f'<html><head><title>Talks</title><meta property="article:published_time" content="{ABSURD["digits"]}">'
            f"</head><body><article><h1>Talks</h1>{body}</article></body></html>")
    ex = extract_article(html.encode(), "https://news.example.com/world/talks", "text/html; charset=utf-8")
    assert ex is not None and "resume in Astana" in ex.text
