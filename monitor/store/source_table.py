"""The ``source`` table as a plain SQLAlchemy Core ``Table``, and the ``MetaData`` every table is
in: what the daemon needs to send its first poll (sync the sources, claim the due ones, read a
poll's start, record it, look up which of its entries are new) without the ORM, SQLModel or
pydantic.

Importing ``monitor.store.models`` costs ``sqlalchemy.orm``, SQLModel, pydantic and all 19
tables' classes: ~0.9 G instructions, a third of the daemon's way to its first request (issue
15). The claim loop and the poll path use only this table, in Core statements, so those imports
come with the first new article or the first delivery, after the first request has left.

It is the one ``source`` table, not a copy: ``models.Source`` is mapped onto it (``__table__``),
and every table of ``models`` is in ``METADATA``, so a statement may join the ORM's columns and
these (``due_condition`` with ``select(Source.name)``). Its columns, indexes and defaults are what
SQLModel made of ``Source``'s fields before; tests/test_deliver_schema.py compares ``METADATA``
with the migrated schema.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    column,
    table,
)

from monitor.clean import redact


class ErrorText(TypeDecorator[str]):
    """Text of an error message: secrets are redacted on the way in. An error quotes what a
    server answered, and servers echo what they were sent (a webhook URL's token, a header)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return redact(value) if value else value


class SourceURL(TypeDecorator[str]):
    """A source's URL as stored: its secrets masked on the way in (``stored_url``). A feed URL
    may carry a token (``?token=${FEED_TOKEN}``) and the database is no place for one: a dump,
    a backup or a read-only SQL user would hand it out. The real URL lives in the config, read
    at every start (``poll_url`` takes it from there)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return stored_url(value) if value else value


def stored_url(url: str) -> str:
    """``url`` as the ``source`` table holds it: every secret ``***`` (``monitor.clean.redact``)."""
    return redact(url)


def poll_url(stored: str, configured: str) -> str:
    """The URL to poll for a source row whose ``url`` column holds ``stored``.

    The row holds the config's URL masked (``SourceURL``), so the real one is the config's when
    the stored one is its masked form (or, in a database written before masking, the config's
    own). A row that moved (a 301/308, a feed found on a page) holds where it moved; when that
    URL held a secret too it was stored masked and cannot be polled as stored: the config's
    URL is polled instead and the server's redirect (or the page's feed link) leads to it again,
    one extra request per poll, never a request to a URL with ``***`` in it."""
    if stored in (configured, stored_url(configured)) or "***" in stored:
        return configured
    return stored


def _when(name: str, index: bool = False) -> Column[Any]:
    return Column(name, DateTime(timezone=True), nullable=True, index=index)


METADATA = MetaData()  # every table's (``models._Table``)

# A polled source with its polling state (kept across restarts: no refetch burst).
SOURCE = Table(
    "source", METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, unique=True, index=True),
    Column("url", SourceURL, nullable=False),
    Column("kind", String, nullable=False, default="feed"),
    Column("etag", String),
    Column("last_modified", String),
    _when("last_polled_at"),
    _when("next_poll_at", index=True),
    Column("last_status", Integer),
    Column("last_error", ErrorText),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    # Fetch area (migration 0301). ``url`` is where we poll: it follows 301/308 and feed
    # autodiscovery; ``config_url`` is the URL the config gave, to tell a config edit from those.
    # Both are stored with their secrets masked (``SourceURL``; ``poll_url`` gets the real one).
    Column("config_url", SourceURL),
    _when("last_success_at"),
    _when("broken_since"),  # set when the "source broken" notice went out
    _when("disabled_at", index=True),  # 410 Gone: not polled until the config changes
    Column("disabled_reason", ErrorText),  # "HTTP 410 Gone" from a URL that may hold a token
    # The interval next_poll_at was planned with: a changed interval re-plans it (start, reload).
    Column("poll_interval", Float),
    # Claim lease (ops): which daemon instance polls this source now, and until when its claim
    # holds; an instance that dies loses the claim at expiry and another takes the source over.
    Column("lease_owner", String),
    _when("lease_expires_at"),
    # What the last poll that read the source noticed but did not fail for (migration 1702):
    # entries skipped, links left to the next poll, pages that are walls; a JSON list of
    # sentences, and when. ``monitor sources`` and the console show them.
    Column("last_warnings", Text),
    _when("last_warnings_at"),
)

# The columns of ``article`` that tell a feed's entry is already stored: a lightweight clause
# (no ``MetaData``, no types), not the table, which ``models.Article`` makes with the ORM. The
# lookup of a poll's new entries runs before the first page is fetched, so it must not wait for
# the ORM's import (~0.2 s of CPU on the first poll's way to its first page, issue 15).
# tests/test_deliver_schema.py checks these names against ``models.Article``'s table.
# With what tells whether a stored article's changed entry is read again (``Pipeline._lookup``).
_AT = DateTime(timezone=True)
ARTICLE_KEYS = table("article", column("url"), column("guid"), column("source_id"), column("id"),
                     column("entry_digest"), column("reread_count"), column("reread_at", _AT),
                     column("first_seen_at", _AT), column("published", _AT), column("published_estimated"),
                     column("fetch_error"))


def source_warnings(stored: str | None) -> list[str]:
    """``source.last_warnings`` (a JSON list of sentences) as a list; [] for none or a damaged value."""
    import json

    try:
        value = json.loads(stored) if stored else []
    except ValueError:
        return []
    return [str(w) for w in value] if isinstance(value, list) else []
