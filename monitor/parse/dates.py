"""Publication dates as feeds write them: RFC 822, ISO 8601, other languages, no time zone.

feedparser understands RFC 822 and ISO 8601 in English only, and reads a date without a time
zone as UTC. Il Messaggero writes "mer, 16 nov 2022 00:38:15 +0100", QQ writes "2018-09-18
14:38:10" meaning Beijing time. We parse the raw string ourselves: strict formats first (fast),
dateparser for the rest (many languages), and a date without a zone is taken in the source's
configured zone, else the zone usual for the feed's language, else UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The zone most of a language's (or a language-country's) news is written in.
_LANG_ZONES: dict[str, str] = {
    "zh": "Asia/Shanghai", "zh-tw": "Asia/Taipei", "zh-hk": "Asia/Hong_Kong", "ja": "Asia/Tokyo",
    "ko": "Asia/Seoul", "ru": "Europe/Moscow", "uk": "Europe/Kyiv", "be": "Europe/Minsk",
    "kk": "Asia/Almaty", "de": "Europe/Berlin", "de-at": "Europe/Vienna", "de-ch": "Europe/Zurich",
    "fr": "Europe/Paris", "fr-ca": "America/Toronto", "fr-be": "Europe/Brussels", "it": "Europe/Rome",
    "es": "Europe/Madrid", "es-mx": "America/Mexico_City", "es-ar": "America/Argentina/Buenos_Aires",
    "es-co": "America/Bogota", "es-cl": "America/Santiago", "pt": "Europe/Lisbon",
    "pt-br": "America/Sao_Paulo", "nl": "Europe/Amsterdam", "pl": "Europe/Warsaw",
    "cs": "Europe/Prague", "sk": "Europe/Bratislava", "hu": "Europe/Budapest", "ro": "Europe/Bucharest",
    "bg": "Europe/Sofia", "el": "Europe/Athens", "tr": "Europe/Istanbul", "sv": "Europe/Stockholm",
    "da": "Europe/Copenhagen", "no": "Europe/Oslo", "nb": "Europe/Oslo", "fi": "Europe/Helsinki",
    "et": "Europe/Tallinn", "lv": "Europe/Riga", "lt": "Europe/Vilnius", "sl": "Europe/Ljubljana",
    "hr": "Europe/Zagreb", "sr": "Europe/Belgrade", "he": "Asia/Jerusalem", "ar": "Asia/Riyadh",
    "ar-eg": "Africa/Cairo", "fa": "Asia/Tehran", "ur": "Asia/Karachi", "hi": "Asia/Kolkata",
    "bn": "Asia/Dhaka", "th": "Asia/Bangkok", "vi": "Asia/Ho_Chi_Minh", "id": "Asia/Jakarta",
    "ms": "Asia/Kuala_Lumpur", "en-gb": "Europe/London", "en-ie": "Europe/Dublin",
    "en-us": "America/New_York", "en-au": "Australia/Sydney", "en-in": "Asia/Kolkata",
    "en-ca": "America/Toronto", "en-nz": "Pacific/Auckland", "en-za": "Africa/Johannesburg",
}
_RFC822_ZONES = {"GMT", "UT", "UTC", "Z", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT"}
_ISO_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$", re.I)


@lru_cache(maxsize=256)
def zone_for(timezone: str | None = None, language: str | None = None) -> tzinfo:
    """The configured zone, else the language's usual one, else UTC."""
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if language:
        lang = language.strip().lower().replace("_", "-")
        name = _LANG_ZONES.get(lang) or _LANG_ZONES.get(lang.split("-")[0])
        if name:
            return ZoneInfo(name)
    return UTC


# Publication dates an article can really have. Feeds write 9999-12-31 and 0001-01-01 as "no
# date", and 1970-01-01 (time 0) from an unset field; a date more than a day ahead is a wrong
# zone or a placeholder. Outside these bounds a date is not taken as real: the article is kept as
# undated (the time it was first seen, flagged as estimated), like an entry with no date at all.
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
AHEAD = timedelta(days=1)


def plausible(dt: datetime, now: datetime | None = None) -> bool:
    """Whether an aware ``dt`` can be an article's publication date (see EARLIEST, AHEAD)."""
    return EARLIEST <= dt <= (now or datetime.now(UTC)) + AHEAD


def _strict(raw: str) -> datetime | None:
    s = raw.strip()
    if _ISO_LIKE.match(s):
        try:
            return datetime.fromisoformat(s.replace(" ", "T", 1) if re.match(r"^\S+ \d", s) else s)
        except ValueError:
            pass
    rfc822 = re.match(r"^([A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+(\d{2,4})\s", s)
    if rfc822:
        zone = re.search(r"\s([A-Za-z]{1,5})$", s)
        if zone and zone.group(1).upper() not in _RFC822_ZONES:
            return None  # "CEST", "MSK": the email parser would read these as UTC
        try:
            dt = parsedate_to_datetime(s)
        except (TypeError, ValueError, IndexError):
            return None
        # The email parser reads a year below 100 as two digits, even written "0000" or "0001"
        # (-> 2000, 2001): a year written with more digits must be read as written.
        year = rfc822.group(2)
        if len(year) > 2 and dt.year != int(year):
            raise _NotADate(raw)
        return dt
    return None


class _NotADate(ValueError):
    """Read as a date by a parser, but not the date written: no other parser should guess."""


# Characters a written date may have (the longest real ones, "Monday, 5th of September 2024,
# 10:00:00 Central European Summer Time", are ~70). Longer is not a date, and reading it was
# harmful: a 5,000-digit "year" raised Python's integer-conversion limit (the feed entry was
# dropped), and dateparser spent seconds on 20 KB of punctuation and then read a date in it.
MAX_DATE_CHARS = 200


def short_enough_for_a_date(raw: str) -> bool:
    """Whether ``raw``, its whitespace folded, is within ``MAX_DATE_CHARS``: longer is no date,
    for any reader of it (ours, or feedparser's own)."""
    return len(" ".join(raw.split())) <= MAX_DATE_CHARS


def read_date(raw: str | None, timezone: str | None = None, language: str | None = None) -> datetime | None:
    """The date ``raw`` writes, in UTC, plausible or not; None when it is not a date."""
    if not raw or not raw.strip() or not short_enough_for_a_date(raw):
        return None
    raw = " ".join(raw.split())
    try:
        dt = _strict(raw)
    except _NotADate:
        return None
    if dt is None:
        if not _may_be_a_date(raw):
            return None
        dt = _dateparser(raw, language)
    if dt is None:
        return None
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        dt = dt.replace(tzinfo=zone_for(timezone, language))
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # 0001-01-01 in a zone east of UTC, 9999-12-31 west of it
        return None


def parse_date(raw: str | None, timezone: str | None = None, language: str | None = None) -> datetime | None:
    """An aware datetime in UTC, or None when ``raw`` is not a date in any language we know or
    not one an article can have (``plausible``)."""
    dt = read_date(raw, timezone, language)
    return dt if dt is not None and plausible(dt) else None


_NUMBER = re.compile(r"(?<![\d.:])\d{3,}(?![\d.:])")


def _may_be_a_date(raw: str) -> bool:
    """Whether dateparser could find a plausible date in ``raw``: some digit, and if it writes
    years (numbers of 3 digits or more), one of them plausible. The rest never reaches it: its
    first look at a string in no known language loads every language's data, 4 s on an idle
    machine and 16 s on a loaded one, which alone ran a feed with one "01 Jan 0000" past its
    parse budget (issue 17)."""
    if not any(c.isdigit() for c in raw):
        return False
    years = [int(n) for n in _NUMBER.findall(raw)]
    latest = datetime.now(UTC).year + 1
    return not years or any(EARLIEST.year <= y <= latest for y in years)


def _dateparser(raw: str, language: str | None) -> datetime | None:
    import dateparser  # loads its language data lazily; only dates strict parsing missed get here

    lang = (language or "").split("-")[0].split("_")[0].lower()
    # A date without its day, month or year is not one: dateparser fills what is missing from
    # today ("2024" read 2024-12-06 on 6 Dec 2026, "1/1" 2026-01-01, "March 2024" the 6th),
    # dates an article never had, which could put a fresh one past ``alert_max_age``. Relative
    # dates ("2 hours ago", "vor 2 Stunden", "yesterday") are still read.
    settings: dict[str, Any] = {"PREFER_DATES_FROM": "past", "REQUIRE_PARTS": ["day", "month", "year"]}
    attempts = ([[lang]] if lang else []) + [None]
    for languages in attempts:
        try:
            dt = dateparser.parse(raw, languages=languages, settings=settings)
        except Exception:  # dateparser raises assorted errors on garbage; garbage is not a date
            dt = None
        if dt is not None:
            return dt
    return None
