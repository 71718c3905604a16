"""Database tables. Every schema change needs a migration in monitor/migrations/versions.

Importing this module is the largest single cost of the daemon's start after SQLAlchemy itself
(19 tables, each a pydantic model and a mapped class: ~40 ms of CPU). Two things keep it down
(issue 15): no ``from __future__ import annotations``, so pydantic and SQLAlchemy read each
column's type as an object instead of evaluating its text (twice: once each), and ``_Table``'s
``defer_build``: pydantic builds a table's validator and serializer when one is first used
(``model_validate``, ``model_dump``), not for every table at import. Nothing here relies on them
at import; a table row made by its constructor is not validated either way (SQLModel).
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig

from monitor.store.source_table import METADATA, SOURCE, ErrorText


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index))


class _Table(SQLModel, registry=registry(metadata=METADATA)):
    """The base of every table: its pydantic schema is built on first use (see the module's
    docstring). Not a table itself. The tables are in ``METADATA`` (``models.METADATA``, not
    SQLModel's own), where ``source`` already is: see ``monitor.store.source_table``."""

    model_config = SQLModelConfig(from_attributes=True, defer_build=True)


class Source(_Table, table=True):
    """A polled source with its polling state (kept across restarts: no refetch burst).

    Mapped onto the Core table the daemon's claim loop and polls use without the ORM
    (``monitor.store.source_table``, where the columns are defined and explained): each field
    is that table's column."""

    __table__ = SOURCE
    id: int | None = Field(default=None, sa_column=SOURCE.c.id)
    name: str = Field(sa_column=SOURCE.c.name)
    url: str = Field(sa_column=SOURCE.c.url)
    kind: str = Field(default="feed", sa_column=SOURCE.c.kind)
    etag: str | None = Field(default=None, sa_column=SOURCE.c.etag)
    last_modified: str | None = Field(default=None, sa_column=SOURCE.c.last_modified)
    last_polled_at: datetime | None = Field(default=None, sa_column=SOURCE.c.last_polled_at)
    next_poll_at: datetime | None = Field(default=None, sa_column=SOURCE.c.next_poll_at)
    last_status: int | None = Field(default=None, sa_column=SOURCE.c.last_status)
    last_error: str | None = Field(default=None, sa_column=SOURCE.c.last_error)
    consecutive_failures: int = Field(default=0, sa_column=SOURCE.c.consecutive_failures)
    config_url: str | None = Field(default=None, sa_column=SOURCE.c.config_url)
    last_success_at: datetime | None = Field(default=None, sa_column=SOURCE.c.last_success_at)
    broken_since: datetime | None = Field(default=None, sa_column=SOURCE.c.broken_since)
    disabled_at: datetime | None = Field(default=None, sa_column=SOURCE.c.disabled_at)
    disabled_reason: str | None = Field(default=None, sa_column=SOURCE.c.disabled_reason)
    poll_interval: float | None = Field(default=None, sa_column=SOURCE.c.poll_interval)
    lease_owner: str | None = Field(default=None, sa_column=SOURCE.c.lease_owner)
    lease_expires_at: datetime | None = Field(default=None, sa_column=SOURCE.c.lease_expires_at)
    last_warnings: str | None = Field(default=None, sa_column=SOURCE.c.last_warnings)
    last_warnings_at: datetime | None = Field(default=None, sa_column=SOURCE.c.last_warnings_at)


class Story(_Table, table=True):
    """One story, however many outlets print it; every article belongs to one (dedup area)."""

    __tablename__ = "story"
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True))


class Article(_Table, table=True):
    __tablename__ = "article"
    __table_args__ = (UniqueConstraint("source_id", "guid", name="uq_article_source_guid"),
                      Index("ix_article_seen_source", "first_seen_at", "source_id"))  # web area (1401)
    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="source.id", index=True)
    guid: str
    url: str = Field(unique=True)  # canonical URL
    original_url: str
    title: str = Field(sa_column=Column(Text, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    published: datetime | None = _ts()
    published_estimated: bool = False  # no date anywhere: first-seen time used instead
    authors: str | None = None
    language: str | None = None
    image: str | None = Field(default=None, sa_column=Column(Text))  # lead image URL (parse area)
    full_text: bool = True  # False: the feed's own content was used (page not fetched or failed)
    fetch_error: str | None = Field(default=None, sa_column=Column(ErrorText))
    content_hash: str | None = Field(default=None, index=True)
    story_id: int | None = Field(default=None, foreign_key="story.id", index=True)  # dedup area
    duplicate_of: int | None = Field(default=None, foreign_key="article.id")  # exact copy of that article
    first_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    # Updated articles (migration 1701): the feed entry's digest when last read (``FeedEntry.digest``;
    # None for articles stored before), and how often and when the article was read again
    # because its entry changed (``monitor.ingest.Ingest.reread``).
    entry_digest: str | None = None
    reread_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    reread_at: datetime | None = _ts()


class ArticleVector(_Table, table=True):
    """An article's sentence-embedding vector (monitor.embed.pack: float16 bytes), computed once
    at ingest when the config needs it (about() rules, cross-language stories); ``model`` names
    the model so a vector from another model is never compared (embed area, migration 1201)."""

    __tablename__ = "article_vector"
    article_id: int = Field(sa_column=Column(Integer, ForeignKey("article.id", ondelete="CASCADE"),
                                             primary_key=True, autoincrement=False))
    model: str = Field(sa_column=Column(String, nullable=False))
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Match(_Table, table=True):
    __tablename__ = "match"
    __table_args__ = (UniqueConstraint("article_id", "rule", name="uq_match_article_rule"),)
    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    rule: str = Field(index=True)
    hits: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    statements: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    # Match area (migration 0501): where the statement is, who said it, and its text.
    field: str | None = None  # "title" or "body": the field of the first statement
    speaker: str | None = Field(default=None, sa_column=Column(Text))
    quote: str | None = Field(default=None, sa_column=Column(Text))


class Alert(_Table, table=True):
    """An alert to send: the rendered facts, frozen at match time so a retry sends the same."""

    __tablename__ = "alert"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # deterministic: rule + article, "notice:..." or "digest:..."
    match_id: int | None = Field(default=None, foreign_key="match.id", index=True)  # None: notice, digest
    rule: str
    kind: str = "match"  # match | notice | digest
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


# The deliveries still to send. The claim's partial index (migration 0602) holds only these,
# and the claim repeats this condition with the same literal values: SQLite's planner uses a
# partial index only for a query whose WHERE holds the index's condition itself. Migration
# 0602 gives PostgreSQL's index the same WHERE; the model names only SQLite's, since a
# ``postgresql_where`` here made every start import SQLAlchemy's PostgreSQL dialect (~20 ms
# of a SQLite daemon's way to its first poll), and the schemas come from the migrations.
OPEN_DELIVERY_STATUSES = ("pending", "failed", "sending")
_OPEN_DELIVERY = text(f"status IN ({', '.join(repr(s) for s in OPEN_DELIVERY_STATUSES)})")


class Delivery(_Table, table=True):
    """One row per (alert, channel): the outbox. Sent only after the channel accepted it."""

    __tablename__ = "delivery"
    __table_args__ = (Index("ix_delivery_due", "status", "next_attempt_at"),
                      Index("ix_delivery_open", "channel", "id", sqlite_where=_OPEN_DELIVERY))
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # alert key + channel: stable across retries
    alert_id: int = Field(foreign_key="alert.id", index=True)
    channel: str
    # pending | sending (claimed, lease) | sent | failed (next_attempt_at) | dead
    # | digest (held for the digest due at digest_due_at) | batched (inside digest delivery digest_id)
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_column=Column(ErrorText))
    sent_at: datetime | None = _ts()
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    lease_owner: str | None = None  # the instance sending it; its claim ends at lease_expires_at
    lease_expires_at: datetime | None = _ts()
    digest_due_at: datetime | None = _ts()
    digest_id: int | None = Field(default=None, index=True)  # the digest delivery that carries it


class DedupBand(_Table, table=True):
    """LSH band keys of an article's MinHash, one row each: the near-duplicate index on SQLite.

    WITHOUT ROWID: the primary key is the whole row, stored once. No foreign key and no index by
    article on purpose (it would double the size): rows are pruned in slices of the key space by
    ``StoryIndex.prune_chunk``, and rows of a deleted article are harmless (lookups join article).
    """

    __tablename__ = "dedup_band"
    __table_args__ = ({"sqlite_with_rowid": False},)
    band: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    article_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))


class DedupSignature(_Table, table=True):
    """The same index on PostgreSQL: one row per article with its band keys.

    A row per band would cost PostgreSQL's 24-byte tuple header 32 times per article (2.6 KB).
    The migration adds a GIN index on ``dedup_lsh_keys(bands)`` (the keys cut to 22 bits, so
    that entries are shared and posting lists compress), which lookups use and then recheck.
    """

    __tablename__ = "dedup_sig"
    article_id: int = Field(sa_column=Column(Integer, ForeignKey("article.id", ondelete="CASCADE"),
                                             primary_key=True, autoincrement=False))
    bands: list[int] = Field(sa_column=Column(ARRAY(Integer).with_variant(JSON(), "sqlite"), nullable=False))


class DedupBoilerplate(_Table, table=True):
    """Paragraphs an outlet repeats in different articles (bylines, footers): not evidence of a copy."""

    __tablename__ = "dedup_boilerplate"
    source_id: int = Field(sa_column=Column(Integer, ForeignKey("source.id", ondelete="CASCADE"),
                                            primary_key=True, autoincrement=False))
    paragraph: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


class DedupClaim(_Table, table=True):
    """Empty at rest: a key is held only while a transaction assigns an article to a story, so
    two instances ingesting copies of one story at once are serialised by the primary key."""

    __tablename__ = "dedup_claim"
    key: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


class StoryAlert(_Table, table=True):
    """A rule alerted for a story: at most once, or once per new statement (``realert``).

    The unique key is what stops two instances from alerting the same story twice.
    """

    __tablename__ = "story_alert"
    __table_args__ = (UniqueConstraint("story_id", "rule", "statement", name="uq_story_alert"),)
    id: int | None = Field(default=None, primary_key=True)
    story_id: int = Field(foreign_key="story.id", index=True)
    rule: str
    statement: str = ""  # "" for the story's first alert; a sentence hash for a re-alert
    article_id: int = Field(foreign_key="article.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class StoryEvent(_Table, table=True):
    """What the event decision knows of an article besides its vector (``article_vector``):
    names and figures (``sig``, see monitor.story.events.Signature) and its publication time
    in epoch seconds (``at``: the window compares those). Rows older than the window are pruned.
    """

    __tablename__ = "story_event"
    article_id: int = Field(sa_column=Column(Integer, ForeignKey("article.id", ondelete="CASCADE"),
                                             primary_key=True, autoincrement=False))
    at: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    sig: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class StoryEventKey(_Table, table=True):
    """Candidate index: one row per lead name or figure of an article, ordered by time under each key.

    A lookup reads, for each key of the new article, the most recent entries inside the window:
    an index range scan capped in size, however many articles the window holds.
    """

    __tablename__ = "story_event_key"
    __table_args__ = ({"sqlite_with_rowid": False},)
    key: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    at: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    article_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))


class StoryApart(_Table, table=True):
    """An analyst split these stories apart: no later article merges them again."""

    __tablename__ = "story_apart"
    story_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    other_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Feedback(_Table, table=True):
    """An analyst's word on a rule's output (web area, migration 1401).

    kind "wrong": this match was wrong (counts towards the rule's precision estimate);
    "mute_story": the story never alerts again for the rule; "mute_source": the source's articles
    never match the rule. ``undone_at`` set: the mute no longer applies (kept for the record).
    """

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_rule_kind", "rule", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    rule: str
    kind: str  # wrong | mute_story | mute_source
    match_id: int | None = None
    story_id: int | None = None
    source_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    undone_at: datetime | None = _ts()


class FeedToken(_Table, table=True):
    """A secret token that opens one rule's Atom/JSON feed of matches; only its hash is stored."""

    __tablename__ = "feed_token"
    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(index=True)
    token_hash: str = Field(unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = _ts()


class Installation(_Table, table=True):
    """One row, made with the database: a random id that is part of every delivery key, so
    alert ids (Idempotency-Key, Message-ID) never repeat across databases."""

    id: int | None = Field(default=None, primary_key=True)
    uid: str


def installation_id(session: Any) -> str:
    """This database's installation id ("" for a database without one, e.g. in a bare test)."""
    from sqlmodel import select

    uid = session.exec(select(Installation.uid)).first()
    return uid or ""


class WebSession(_Table, table=True):
    """A logged-in console session, kept so a restart of the daemon logs nobody out.

    Only the SHA-256 of the cookie's random id is stored (a copy of this table opens no
    session), with ``tag``: an HMAC of the id under a key derived from the role's password, so a
    session made under a password that has since changed is refused and deleted.
    """

    __tablename__ = "web_session"
    id_hash: str = Field(primary_key=True)
    role: str
    tag: str
    csrf: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = _ts(nullable=False, index=True)
